"""Clips: videos, their background jobs (watermarked downloads, cuts), reposts, reactions.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clips",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("creator_id", sa.BigInteger, nullable=False),
        sa.Column("title", sa.String(140), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("video_key", sa.String(255), nullable=True),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("duration_ms", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("width", sa.Integer, nullable=False, server_default="0"),
        sa.Column("height", sa.Integer, nullable=False, server_default="0"),
        sa.Column("has_audio", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("downloads_enabled", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("download_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.CheckConstraint("status IN ('processing', 'ready', 'failed')", name="ck_clips_status"),
        sa.CheckConstraint("source IN ('upload', 'recording')", name="ck_clips_source"),
        sa.Index("ix_clips_creator", "creator_id", "created_at_us"),
    )
    op.create_table(
        "clip_jobs",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("clip_id", sa.String(24), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("progress_pct", sa.Integer, nullable=False, server_default="0"),
        sa.Column("params", sa.Text, nullable=False, server_default="{}"),
        sa.Column("output_key", sa.String(255), nullable=True),
        sa.Column("output_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("clip_id", "kind", "version", name="uq_clip_jobs_clip_kind_version"),
        sa.CheckConstraint("kind IN ('render', 'cut')", name="ck_clip_jobs_kind"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name="ck_clip_jobs_status"
        ),
        sa.CheckConstraint("progress_pct BETWEEN 0 AND 100", name="ck_clip_jobs_progress"),
        sa.Index("ix_clip_jobs_status", "status"),
    )
    op.create_table(
        "clip_reposts",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("clip_id", sa.String(24), primary_key=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Index("ix_clip_reposts_user", "user_id", "created_at_us"),
        sa.Index("ix_clip_reposts_clip", "clip_id"),
    )
    op.create_table(
        "clip_reactions",
        sa.Column("clip_id", sa.String(24), primary_key=True),
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("emoji", sa.String(16), primary_key=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("clip_reactions")
    op.drop_table("clip_reposts")
    op.drop_table("clip_jobs")
    op.drop_table("clips")

"""The secret in a creator's OBS overlay link. The overlay shows only what the room shows
everyone; the key keeps the link the creator's own (nobody else can put their alerts on a
stream) and lets one link follow the creator from stream to stream."""

from __future__ import annotations

import secrets
from typing import Final

from sqlalchemy import Connection, Engine, delete, insert, select

from giftwave.clock import now_us
from giftwave.db.tables import overlay_keys
from giftwave.db.upsert import insert_new
from giftwave.identity.permissions import require_creator
from giftwave.identity.users import User

KEY_BYTES: Final = 18  # 24 URL-safe characters


def overlay_key(conn: Connection, creator_id: int) -> str:
    """The creator's key, made on first use. Two first uses at once agree on one key."""
    found = conn.execute(
        select(overlay_keys.c.key).where(overlay_keys.c.creator_id == creator_id)
    ).scalar_one_or_none()
    if found is not None:
        return str(found)
    # Refused when made by a concurrent first use: read theirs.
    insert_new(
        conn,
        insert(overlay_keys).values(
            creator_id=creator_id, key=secrets.token_urlsafe(KEY_BYTES), created_at_us=now_us()
        ),
    )
    return str(
        conn.execute(
            select(overlay_keys.c.key).where(overlay_keys.c.creator_id == creator_id)
        ).scalar_one()
    )


def rotate_overlay_key(conn: Connection, creator_id: int) -> str:
    """A new key; links with the old one stop working at once."""
    conn.execute(delete(overlay_keys).where(overlay_keys.c.creator_id == creator_id))
    conn.execute(
        insert(overlay_keys).values(
            creator_id=creator_id, key=secrets.token_urlsafe(KEY_BYTES), created_at_us=now_us()
        )
    )
    return overlay_key(conn, creator_id)


def creator_of_key(conn: Connection, key: str) -> int | None:
    if not 0 < len(key) <= 64:
        return None
    found = conn.execute(
        select(overlay_keys.c.creator_id).where(overlay_keys.c.key == key)
    ).scalar_one_or_none()
    return None if found is None else int(found)


def creator_key(db: Engine, user: User) -> str:
    """The creator's overlay key, made at the first ask: the permission and the transaction."""
    require_creator(user, "have an overlay link")
    with db.begin() as conn:
        return overlay_key(conn, user.id)


def rotate_creator_key(db: Engine, user: User) -> str:
    """A new key for the creator; every old link stops working."""
    require_creator(user, "have an overlay link")
    with db.begin() as conn:
        return rotate_overlay_key(conn, user.id)

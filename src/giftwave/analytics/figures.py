"""The health reports as a route asks for them, one call each: the read (``with
db.connect()``) around ``reports.py``, and who may see a stream's. Bringing the rollups up to
the ledger first is the caller's (the API's ``Freshness``, one catch-up at a time per process).
"""

from __future__ import annotations

from sqlalchemy import Engine

from giftwave.analytics.reports import (
    CreatorReport,
    EconomyReport,
    StreamReport,
    creator_report,
    economy_report,
    stream_report,
)
from giftwave.errors import Code, Forbidden, NotFound


def economy(
    db: Engine, *, payout_min_cents: int, diamond_value_usd_micros: int, days: int
) -> EconomyReport:
    with db.connect() as conn:
        return economy_report(
            conn,
            payout_min_cents=payout_min_cents,
            diamond_value_usd_micros=diamond_value_usd_micros,
            days=days,
        )


def creator(db: Engine, creator_id: int, days: int) -> CreatorReport:
    with db.connect() as conn:
        return creator_report(conn, creator_id, days=days)


def stream(db: Engine, stream_id: str, at_us: int) -> StreamReport:
    """The stream's report (404 ``stream_not_found``: no such stream)."""
    with db.connect() as conn:
        found = stream_report(conn, stream_id, now_us=at_us)
    if found is None:
        raise NotFound(Code.STREAM_NOT_FOUND, f"no stream {stream_id!r}")
    return found


def stream_for(
    db: Engine, stream_id: str, at_us: int, *, reader_id: int | None, admin: bool
) -> StreamReport:
    """The stream's report for its creator (``reader_id``: the person asking, None for an
    API key) and for admins; anyone else: 403 ``not_your_stream``, once the stream is found."""
    report = stream(db, stream_id, at_us)
    if not (admin or (reader_id is not None and reader_id == report.creator_id)):
        raise Forbidden(Code.NOT_YOUR_STREAM, "only the stream's creator and admins see this")
    return report

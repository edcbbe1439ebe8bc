"""Combos for webhooks, kept in the database: the same sender sending the same comboable gift
with no gap longer than the quiet window grows one combo; once the sender has been quiet for
the window, the combo is closed and its ``combo_end`` queued, exactly once.

The room (live/combos.py) applies the same rule in memory for the screen. Webhooks cannot use
that copy: with several nodes each holds one (and a room nobody watches is held by none), and a
crash forgets it. Here the open combo is a row, grown by an atomic upsert and closed by a
DELETE … RETURNING, so whichever node closes it, it closes once, and a restart finds it.

Times are the commit times this process saw, the room's are the broadcast's: a gap within a
few milliseconds of the window can split one and not the other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Connection, case, delete, select

from giftwave.db.claims import due_ids
from giftwave.db.tables import webhook_combos
from giftwave.db.upsert import insert_for
from giftwave.economy.gifting import GiftSent
from giftwave.webhooks.events import Event, combo_end_event

log = logging.getLogger(__name__)

c = webhook_combos
# A gift stamped just before the window closed may still be on its way to the database; the
# sweep waits this much longer, so it joins its combo instead of starting a new one.
GRACE_US: Final = 1_000_000
CLOSE_BATCH: Final = 500
UPSERT_TRIES: Final = 3


def _event(row: Mapping[Any, Any]) -> Event:
    """A combo's ``combo_end``, from its row (or from the row one send would open)."""
    return combo_end_event(
        creator_id=int(row["creator_id"]),
        stream_id=row["stream_id"],
        combo_id=row["combo_id"],
        sender_id=int(row["sender_id"]),
        sender_handle=row["sender_handle"],
        gift_id=row["gift_id"],
        count=int(row["gift_count"]),
        coins=int(row["coins"]),
        diamonds=int(row["diamonds"]),
        sends=int(row["sends"]),
        started_at_us=int(row["started_at_us"]),
        last_at_us=int(row["last_at_us"]),
    )


def _one_send(sent: GiftSent, sender_handle: str, at_us: int) -> dict[str, Any]:
    """The combo of one send: the row ``track_gift`` opens, and the whole of a gift that
    cannot combo (its combo_id is the send id, as in the room's ``gift`` events)."""
    return {
        "stream_id": sent.stream_id,
        "sender_id": sent.sender_id,
        "gift_id": sent.gift_id,
        "creator_id": sent.creator_id,
        "combo_id": sent.send_id,
        "sender_handle": sender_handle,
        "gift_count": sent.count,
        "coins": sent.coins,
        "diamonds": sent.diamonds,
        "sends": 1,
        "started_at_us": at_us,
        "last_at_us": at_us,
    }


def single_combo_end(sent: GiftSent, sender_handle: str, at_us: int) -> Event:
    """A gift that cannot combo ends at once, like its ``final`` event in the room."""
    return _event(_one_send(sent, sender_handle, at_us))


def _close(conn: Connection, condition: Any) -> list[Event]:
    rows = conn.execute(delete(c).where(condition).returning(*c.c)).mappings().all()
    return [_event(row) for row in rows]


def track_gift(
    conn: Connection, sent: GiftSent, sender_handle: str, *, at_us: int, quiet_us: int
) -> list[Event]:
    """Add one comboable gift send to its combo (opening one if none is open). A combo of the
    same key that is already over is closed first: its ``combo_end`` is returned."""
    ins = insert_for(conn, c).values(_one_send(sent, sender_handle, at_us))
    upsert = ins.on_conflict_do_update(
        index_elements=[c.c.stream_id, c.c.sender_id, c.c.gift_id],
        set_={
            "gift_count": c.c.gift_count + ins.excluded.gift_count,
            "coins": c.c.coins + ins.excluded.coins,
            "diamonds": c.c.diamonds + ins.excluded.diamonds,
            "sends": c.c.sends + 1,
            # Sends can reach the database out of order: the combo lasts until the latest.
            "last_at_us": case(
                (ins.excluded.last_at_us > c.c.last_at_us, ins.excluded.last_at_us),
                else_=c.c.last_at_us,
            ),
        },
        where=c.c.last_at_us >= at_us - quiet_us,
    ).returning(c.c.id)
    key = (
        (c.c.stream_id == sent.stream_id)
        & (c.c.sender_id == sent.sender_id)
        & (c.c.gift_id == sent.gift_id)
    )
    closed: list[Event] = []
    for _ in range(UPSERT_TRIES):
        if conn.execute(upsert).first() is not None:
            return closed
        # The open combo is over (the sender was quiet longer than the window): close it here
        # rather than wait for the sweep, then open the new one.
        closed += _close(conn, key & (c.c.last_at_us < at_us - quiet_us))
    log.warning("combo of %s could not be tracked; its combo_end will be missing", sent.send_id)
    return closed


def close_quiet(conn: Connection, *, now_us: int, quiet_us: int) -> list[Event]:
    """Close combos whose sender has been quiet for the window (and the grace); their
    ``combo_end`` events, to be queued in the same transaction."""
    cutoff = now_us - quiet_us - GRACE_US
    due = due_ids(c.c.id, c.c.last_at_us < cutoff, order_by=c.c.last_at_us, limit=CLOSE_BATCH)
    return _close(conn, c.c.id.in_(select(due.c.id)) & (c.c.last_at_us < cutoff))

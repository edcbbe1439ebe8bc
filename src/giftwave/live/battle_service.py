"""What creators do with battles, one call each: the unit of work (one transaction or one
read) around the rules of ``battles.py``, which refuse whoever may not (not your stream,
not invited, not in the battle). Blocking: a route runs them on a worker thread, then has
the referee announce a change."""

from __future__ import annotations

from sqlalchemy import Engine

from giftwave.errors import Code, NotFound
from giftwave.live import battles
from giftwave.live.battles import Battle, BattleStatus
from giftwave.live.streams import get_stream
from giftwave.notify.notices import NoticeKind
from giftwave.notify.service import Notifications


def challenge(
    db: Engine,
    user_id: int,
    stream_id: str,
    opponent_stream_id: str,
    duration_s: int,
    *,
    min_duration_s: int,
) -> Battle:
    """A challenge from the user's live stream to another live stream."""
    with db.begin() as conn:
        return battles.challenge(
            conn, user_id, stream_id, opponent_stream_id, duration_s, min_duration_s=min_duration_s
        )


def accept(
    db: Engine, battle_id: int, user_id: int, *, notices: Notifications | None = None
) -> tuple[Battle, bool]:
    """(the battle, whether this call changed it). A battle that started is told, once
    committed, to each side's opted-in followers."""
    with db.begin() as conn:
        battle, changed = battles.accept(conn, battle_id, user_id)
    if changed and notices is not None and battle.status is BattleStatus.ACTIVE:
        for side, other in ((battle.a, battle.b), (battle.b, battle.a)):
            payload = {"stream_id": side.stream_id, "battle_id": battle.id, "against": other.handle}
            notices.tell_followers(side.creator_id, NoticeKind.BATTLE, str(battle.id), payload)
    return battle, changed


def decline(db: Engine, battle_id: int, user_id: int) -> tuple[Battle, bool]:
    with db.begin() as conn:
        return battles.decline(conn, battle_id, user_id)


def stop(db: Engine, battle_id: int, user_id: int) -> tuple[Battle, bool]:
    """Ended early by either creator, or an invitation withdrawn."""
    with db.begin() as conn:
        return battles.stop(conn, battle_id, user_id)


def get(db: Engine, battle_id: int) -> Battle:
    with db.connect() as conn:
        return battles.get_battle(conn, battle_id)


def of_stream(db: Engine, stream_id: str) -> Battle:
    """The stream's pending or active battle (404 ``no_battle``)."""
    with db.connect() as conn:
        current = battles.current_battle_of(conn, get_stream(conn, stream_id).id)
    if current is None:
        raise NotFound(Code.NO_BATTLE, "this stream is in no battle now")
    return current


def committed_scores(db: Engine, battle: Battle) -> tuple[int, int]:
    """An active battle's scores so far: the coins of its committed gifts."""
    with db.connect() as conn:
        return battles.committed_scores(conn, battle)

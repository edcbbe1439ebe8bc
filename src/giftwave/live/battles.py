"""Battles: two live creators in a timed match; gifts to each side score its coins.

    pending ──accept──► active ──(ends_at_us, then the settle delay)──► ended
       ├──decline──► declined          (either creator may end an active battle early:
       └──60 s─────► expired            ends_at_us becomes now, scored as it stands)

A creator challenges another creator's live stream; only the invited creator accepts or
declines, within a minute. An accepted battle starts after a short countdown and lasts
``duration_s``. A stream is in at most one pending or active battle: a challenge locks both
stream rows (in id order), writes, then looks for another battle, so of two racing challenges
the second sees the first and is refused.

Scores count committed gifts only (bill first, then broadcast): a side's points are the coins
of gifts to its stream recorded in [starts_at_us, ends_at_us) whose ledger transfer exists.
Rooms add points live as gift events land; the score written when the battle ends is read from
the database, and it is the one that counts. A gift an operator reverses comes out of the live
scores of both rooms; if its battle has ended, the stored scores and winner are computed again
(``rescore``) and both rooms show the corrected result (the ``battle_ended`` webhook already
sent is not sent again).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final, TypeVar

from sqlalchemy import ColumnElement, Connection, Row, case, func, insert, or_, select, update

from giftwave.clock import now_us
from giftwave.db.tables import battles, gift_sends, transfers, users
from giftwave.errors import Code, Conflict, Forbidden, Invalid, NotFound
from giftwave.live.events import (
    BattleEndedShown,
    BattleShown,
    BattleSide,
    BattleState,
)
from giftwave.live.streams import lock_streams

S = TypeVar("S", bound=BattleState)

DEFAULT_DURATION_S: Final = 300
MIN_DURATION_S: Final = 60  # GIFTWAVE_BATTLE_MIN_DURATION_S may lower it (tests)
MAX_DURATION_S: Final = 1800
INVITATION_TTL_US: Final = 60_000_000
# "3, 2, 1": also what lets every node's cache of active battles (battle_referee.py) learn of
# the battle before its first point counts.
COUNTDOWN_US: Final = 3_000_000
# A gift recorded just before the end commits a few milliseconds later; the result waits
# this long after ends_at_us so that such a gift is in it.
SETTLE_US: Final = 1_000_000


class BattleStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    ENDED = "ended"
    DECLINED = "declined"
    EXPIRED = "expired"

    @property
    def over(self) -> bool:
        return self in (BattleStatus.ENDED, BattleStatus.DECLINED, BattleStatus.EXPIRED)


class Winner(enum.StrEnum):
    A = "a"
    B = "b"
    DRAW = "draw"


def winner_of(score_a: int, score_b: int) -> Winner:
    if score_a == score_b:
        return Winner.DRAW
    return Winner.A if score_a > score_b else Winner.B


@dataclass(frozen=True, slots=True)
class Side:
    stream_id: str
    creator_id: int
    handle: str


@dataclass(frozen=True, slots=True)
class Battle:
    id: int
    a: Side  # the challenger
    b: Side  # the invited creator
    status: BattleStatus
    duration_s: int
    created_at_us: int
    started_at_us: int | None
    ends_at_us: int | None
    ended_at_us: int | None
    score_a: int  # written when the battle ends; 0 before
    score_b: int
    winner: Winner | None

    @property
    def stream_ids(self) -> tuple[str, str]:
        return self.a.stream_id, self.b.stream_id

    @property
    def invitation_expires_at_us(self) -> int:
        return self.created_at_us + INVITATION_TTL_US

    def side_of(self, stream_id: str) -> str | None:
        if stream_id == self.a.stream_id:
            return "a"
        return "b" if stream_id == self.b.stream_id else None

    def counts_at(self, at_us: int) -> bool:
        """Whether a gift recorded at ``at_us`` scores in this battle."""
        return (
            self.status is BattleStatus.ACTIVE
            and self.started_at_us is not None
            and self.ends_at_us is not None
            and self.started_at_us <= at_us < self.ends_at_us
        )

    def due_at_us(self) -> int | None:
        """When the result may be taken: after the end and the settle delay."""
        return None if self.ends_at_us is None else self.ends_at_us + SETTLE_US

    def sides(self, score_a: int, score_b: int) -> list[BattleSide]:
        return [
            BattleSide(
                side=name,
                stream_id=side.stream_id,
                creator_id=side.creator_id,
                handle=side.handle,
                score=score,
            )
            for name, side, score in (("a", self.a, score_a), ("b", self.b, score_b))
        ]

    def event(self, score_a: int, score_b: int) -> BattleShown:
        """The room's ``battle`` event, with the scores the room holds."""
        return BattleShown(
            battle_id=self.id,
            status=self.status.value,
            sides=self.sides(score_a, score_b),
            duration_s=self.duration_s,
            invitation_expires_at_us=self.invitation_expires_at_us,
            starts_at_us=self.started_at_us,
            ends_at_us=self.ends_at_us,
            winner=None if self.winner is None else self.winner.value,
        )

    def ended_event(self) -> BattleEndedShown:
        assert self.status is BattleStatus.ENDED
        assert self.winner is not None
        return BattleEndedShown(
            battle_id=self.id,
            winner=self.winner.value,
            sides=self.sides(self.score_a, self.score_b),
            ended_at_us=self.ended_at_us,
        )

    def state(self, kind: type[S]) -> S:
        """Everything about the battle, as news for the broker: a room on any node rebuilds
        it (``of_state``). ``kind``: ``BattleSet``, ``BattleEnded`` or ``BattleRescored``."""
        return kind(
            battle_id=self.id,
            status=self.status.value,
            stream_a=self.a.stream_id,
            creator_a=self.a.creator_id,
            handle_a=self.a.handle,
            stream_b=self.b.stream_id,
            creator_b=self.b.creator_id,
            handle_b=self.b.handle,
            duration_s=self.duration_s,
            created_at_us=self.created_at_us,
            started_at_us=self.started_at_us,
            ends_at_us=self.ends_at_us,
            ended_at_us=self.ended_at_us,
            score_a=self.score_a,
            score_b=self.score_b,
            winner=None if self.winner is None else self.winner.value,
        )

    @classmethod
    def of_state(cls, e: BattleState) -> Battle:
        return cls(
            id=e.battle_id,
            a=Side(e.stream_a, e.creator_a, e.handle_a),
            b=Side(e.stream_b, e.creator_b, e.handle_b),
            status=BattleStatus(e.status),
            duration_s=e.duration_s,
            created_at_us=e.created_at_us,
            started_at_us=e.started_at_us,
            ends_at_us=e.ends_at_us,
            ended_at_us=e.ended_at_us,
            score_a=e.score_a,
            score_b=e.score_b,
            winner=None if e.winner is None else Winner(e.winner),
        )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


_users_a = users.alias("creator_a_user")
_users_b = users.alias("creator_b_user")
_SELECT: Final = select(
    battles, _users_a.c.handle.label("handle_a"), _users_b.c.handle.label("handle_b")
).select_from(
    battles.join(_users_a, _users_a.c.id == battles.c.creator_a).join(
        _users_b, _users_b.c.id == battles.c.creator_b
    )
)
_OPEN: Final = (BattleStatus.PENDING.value, BattleStatus.ACTIVE.value)


def _to_battle(row: Row[Any]) -> Battle:
    m = row._mapping
    return Battle(
        id=int(m["id"]),
        a=Side(m["stream_a"], int(m["creator_a"]), m["handle_a"]),
        b=Side(m["stream_b"], int(m["creator_b"]), m["handle_b"]),
        status=BattleStatus(m["status"]),
        duration_s=int(m["duration_s"]),
        created_at_us=int(m["created_at_us"]),
        started_at_us=_int_or_none(m["started_at_us"]),
        ends_at_us=_int_or_none(m["ends_at_us"]),
        ended_at_us=_int_or_none(m["ended_at_us"]),
        score_a=int(m["score_a"]),
        score_b=int(m["score_b"]),
        winner=None if m["winner"] is None else Winner(m["winner"]),
    )


def find_battle(conn: Connection, battle_id: int) -> Battle | None:
    row = conn.execute(_SELECT.where(battles.c.id == battle_id)).first()
    return None if row is None else _to_battle(row)


def get_battle(conn: Connection, battle_id: int) -> Battle:
    battle = find_battle(conn, battle_id)
    if battle is None:
        raise NotFound(Code.BATTLE_NOT_FOUND, f"no battle {battle_id}")
    return battle


def _of_stream(stream_id: str) -> Any:
    return or_(battles.c.stream_a == stream_id, battles.c.stream_b == stream_id)


def current_battle_of(conn: Connection, stream_id: str) -> Battle | None:
    """The stream's pending or active battle, if any."""
    row = conn.execute(
        _SELECT.where(_of_stream(stream_id), battles.c.status.in_(_OPEN))
        .order_by(battles.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _to_battle(row)


def active_battle_of(conn: Connection, stream_id: str) -> Battle | None:
    battle = current_battle_of(conn, stream_id)
    return battle if battle is not None and battle.status is BattleStatus.ACTIVE else None


def latest_battle_of(conn: Connection, stream_id: str) -> Battle | None:
    """The stream's newest battle in any state: what its room shows."""
    row = conn.execute(
        _SELECT.where(_of_stream(stream_id)).order_by(battles.c.id.desc()).limit(1)
    ).first()
    return None if row is None else _to_battle(row)


def battle_scored_in(conn: Connection, stream_id: str, at_us: int) -> Battle | None:
    """The battle in which a gift to ``stream_id`` recorded at ``at_us`` scores (or scored)."""
    row = conn.execute(
        _SELECT.where(
            _of_stream(stream_id),
            battles.c.status.in_((BattleStatus.ACTIVE.value, BattleStatus.ENDED.value)),
            battles.c.started_at_us <= at_us,
            battles.c.ends_at_us > at_us,
        )
        .order_by(battles.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _to_battle(row)


def rescore(conn: Connection, battle_id: int) -> Battle | None:
    """An ended battle's stored scores and winner, computed again from the committed,
    unreversed gifts (one was reversed after the end); None when it has not ended."""
    battle = find_battle(conn, battle_id)
    if battle is None or battle.status is not BattleStatus.ENDED:
        return None
    score_a, score_b = committed_scores(conn, battle)
    if (score_a, score_b) != (battle.score_a, battle.score_b):
        conn.execute(
            update(battles)
            .where(battles.c.id == battle_id, battles.c.status == BattleStatus.ENDED.value)
            .values(score_a=score_a, score_b=score_b, winner=winner_of(score_a, score_b).value)
        )
    return get_battle(conn, battle_id)


def challenge(
    conn: Connection,
    creator_id: int,
    stream_id: str,
    opponent_stream_id: str,
    duration_s: int,
    *,
    min_duration_s: int = MIN_DURATION_S,
) -> Battle:
    """Creator A, live on ``stream_id``, invites the creator live on ``opponent_stream_id``."""
    if not min_duration_s <= duration_s <= MAX_DURATION_S:
        raise Invalid(
            Code.INVALID_BATTLE_DURATION,
            f"a battle lasts {min_duration_s}..{MAX_DURATION_S} seconds",
        )
    if stream_id == opponent_stream_id:
        raise Invalid(Code.CANNOT_BATTLE_SELF, "a stream cannot battle itself")
    locked = lock_streams(conn, [stream_id, opponent_stream_id])
    mine, theirs = locked.get(stream_id), locked.get(opponent_stream_id)
    if mine is None or theirs is None:
        missing = stream_id if mine is None else opponent_stream_id
        raise NotFound(Code.STREAM_NOT_FOUND, f"no stream {missing!r}")
    if mine.creator_id != creator_id:
        raise Forbidden(Code.NOT_YOUR_STREAM, "challenge from a stream of your own")
    if theirs.creator_id == creator_id:
        raise Invalid(Code.CANNOT_BATTLE_SELF, "creators cannot battle themselves")
    if not (mine.live and theirs.live):
        raise Conflict(Code.STREAM_NOT_LIVE, "both streams must be live to battle")
    # Write first, then look: on SQLite the insert takes the one write lock, so the check
    # below sees every battle committed before it; on PostgreSQL the stream rows are locked.
    battle_id = conn.execute(
        insert(battles)
        .values(
            stream_a=mine.id,
            stream_b=theirs.id,
            creator_a=mine.creator_id,
            creator_b=theirs.creator_id,
            status=BattleStatus.PENDING.value,
            duration_s=duration_s,
            created_at_us=now_us(),
        )
        .returning(battles.c.id)
    ).scalar_one()
    other = conn.execute(
        select(battles.c.id)
        .where(
            battles.c.id != battle_id,
            battles.c.status.in_(_OPEN),
            or_(
                battles.c.stream_a.in_((mine.id, theirs.id)),
                battles.c.stream_b.in_((mine.id, theirs.id)),
            ),
        )
        .limit(1)
    ).scalar()
    if other is not None:  # raising rolls the insert back
        raise Conflict(
            Code.BATTLE_IN_PROGRESS,
            "one of these streams is already in a battle or invitation",
            battle_id=int(other),
        )
    return get_battle(conn, int(battle_id))


def _not_pending(battle: Battle) -> Conflict:
    if battle.status is BattleStatus.EXPIRED:
        return Conflict(Code.INVITATION_EXPIRED, "this challenge was not accepted within a minute")
    return Conflict(
        Code.BATTLE_NOT_PENDING,
        f"this battle is {battle.status.value}",
        status_now=battle.status.value,
    )


def accept(conn: Connection, battle_id: int, user_id: int) -> tuple[Battle, bool]:
    """The invited creator accepts: the countdown starts. Accepting again answers the battle
    as it is (False: nothing changed), never a second start."""
    battle = get_battle(conn, battle_id)
    if user_id != battle.b.creator_id:
        raise Forbidden(Code.NOT_INVITED, "only the invited creator answers a challenge")
    if battle.status in (BattleStatus.ACTIVE, BattleStatus.ENDED):
        return battle, False
    if battle.status is not BattleStatus.PENDING:
        raise _not_pending(battle)
    now = now_us()
    if now >= battle.invitation_expires_at_us:
        raise _not_pending(replace(battle, status=BattleStatus.EXPIRED))
    live = lock_streams(conn, list(battle.stream_ids))
    if not all(s in live and live[s].live for s in battle.stream_ids):
        raise Conflict(Code.STREAM_NOT_LIVE, "both streams must be live to battle")
    starts = now + COUNTDOWN_US
    started = conn.execute(
        update(battles)
        .where(battles.c.id == battle_id, battles.c.status == BattleStatus.PENDING.value)
        .values(
            status=BattleStatus.ACTIVE.value,
            started_at_us=starts,
            ends_at_us=starts + battle.duration_s * 1_000_000,
        )
    ).rowcount
    if not started:  # answered meanwhile (a double tap): say what it is now
        return accept(conn, battle_id, user_id)
    return get_battle(conn, battle_id), True


def decline(conn: Connection, battle_id: int, user_id: int) -> tuple[Battle, bool]:
    battle = get_battle(conn, battle_id)
    if user_id != battle.b.creator_id:
        raise Forbidden(Code.NOT_INVITED, "only the invited creator answers a challenge")
    if battle.status is BattleStatus.DECLINED:
        return battle, False
    if battle.status is not BattleStatus.PENDING:
        raise _not_pending(battle)
    if now_us() >= battle.invitation_expires_at_us:
        raise _not_pending(replace(battle, status=BattleStatus.EXPIRED))
    return _close_invitation(conn, battle, BattleStatus.DECLINED)


def _close_invitation(
    conn: Connection, battle: Battle, status: BattleStatus
) -> tuple[Battle, bool]:
    closed = conn.execute(
        update(battles)
        .where(battles.c.id == battle.id, battles.c.status == BattleStatus.PENDING.value)
        .values(status=status.value, ended_at_us=now_us())
    ).rowcount
    return get_battle(conn, battle.id), bool(closed)


def stop(conn: Connection, battle_id: int, user_id: int) -> tuple[Battle, bool]:
    """Either creator ends the battle early: an invitation is withdrawn (declined), an
    active battle ends now with the points scored so far."""
    battle = get_battle(conn, battle_id)
    if user_id not in (battle.a.creator_id, battle.b.creator_id):
        raise Forbidden(Code.NOT_IN_BATTLE, "only the two creators can end their battle")
    return _stop(conn, battle, BattleStatus.DECLINED)


def stop_for_stream(conn: Connection, stream_id: str) -> tuple[Battle, bool] | None:
    """A stream ended: its invitation lapses (expired), its active battle ends now."""
    battle = current_battle_of(conn, stream_id)
    return None if battle is None else _stop(conn, battle, BattleStatus.EXPIRED)


def _stop(conn: Connection, battle: Battle, invitation_to: BattleStatus) -> tuple[Battle, bool]:
    if battle.status is BattleStatus.PENDING:
        return _close_invitation(conn, battle, invitation_to)
    if battle.status is not BattleStatus.ACTIVE:
        return battle, False
    now = now_us()
    cut = conn.execute(
        update(battles)
        .where(
            battles.c.id == battle.id,
            battles.c.status == BattleStatus.ACTIVE.value,
            battles.c.ends_at_us > now,
        )
        .values(
            ends_at_us=now,
            # Ended during the countdown: nothing was scored, and nothing will be.
            started_at_us=case((battles.c.started_at_us > now, now), else_=battles.c.started_at_us),
        )
    ).rowcount
    return get_battle(conn, battle.id), bool(cut)


def committed_scores(conn: Connection, battle: Battle) -> tuple[int, int]:
    """Each side's coins from committed, unreversed gifts within the battle's time."""
    if battle.started_at_us is None or battle.ends_at_us is None:
        return 0, 0
    rows = conn.execute(
        select(gift_sends.c.stream_id, func.sum(gift_sends.c.coins))
        .select_from(gift_sends.join(transfers, transfers.c.id == gift_sends.c.transfer_id))
        .where(
            # By creator and time first: ix_gift_sends_creator_time narrows it to the battle.
            gift_sends.c.creator_id.in_((battle.a.creator_id, battle.b.creator_id)),
            gift_sends.c.created_at_us >= battle.started_at_us,
            gift_sends.c.created_at_us < battle.ends_at_us,
            gift_sends.c.stream_id.in_(battle.stream_ids),
            gift_sends.c.reversed.is_(False),
        )
        .group_by(gift_sends.c.stream_id)
    ).all()
    coins = {stream_id: int(total) for stream_id, total in rows}
    return coins.get(battle.a.stream_id, 0), coins.get(battle.b.stream_id, 0)


def _oldest_ids(
    conn: Connection, status: BattleStatus, since: ColumnElement[int], before_us: int, limit: int
) -> list[int]:
    """Battles in ``status`` whose ``since`` is at or before ``before_us``, oldest first."""
    query = select(battles.c.id).where(battles.c.status == status.value, since <= before_us)
    return [int(i) for i in conn.execute(query.order_by(since).limit(limit)).scalars()]


def due_to_finish(conn: Connection, now: int, limit: int) -> list[int]:
    return _oldest_ids(conn, BattleStatus.ACTIVE, battles.c.ends_at_us, now - SETTLE_US, limit)


# Told the result in the transaction that records it (webhooks queue their outbox rows there:
# the rows then exist exactly when the result does). The battles feature knows no observer.
ResultObserver = Callable[[Connection, Battle], object]


def finish(conn: Connection, battle_id: int, on_result: ResultObserver) -> Battle | None:
    """End a due battle with the scores the database holds, and tell ``on_result`` in the same
    transaction. None when it is not due, or was ended by someone else first (another node):
    only the one that ends it announces it."""
    battle = get_battle(conn, battle_id)
    due = battle.due_at_us()
    if battle.status is not BattleStatus.ACTIVE or due is None or now_us() < due:
        return None
    score_a, score_b = committed_scores(conn, battle)
    ended = conn.execute(
        update(battles)
        .where(battles.c.id == battle_id, battles.c.status == BattleStatus.ACTIVE.value)
        .values(
            status=BattleStatus.ENDED.value,
            ended_at_us=now_us(),
            score_a=score_a,
            score_b=score_b,
            winner=winner_of(score_a, score_b).value,
        )
    ).rowcount
    if not ended:
        return None
    done = get_battle(conn, battle_id)
    on_result(conn, done)
    return done


def due_to_expire(conn: Connection, now: int, limit: int) -> list[int]:
    return _oldest_ids(
        conn, BattleStatus.PENDING, battles.c.created_at_us, now - INVITATION_TTL_US, limit
    )


def expire(conn: Connection, battle_id: int) -> Battle | None:
    """An unanswered invitation lapses; None when it was answered (or expired) first."""
    battle = get_battle(conn, battle_id)
    if battle.status is not BattleStatus.PENDING:
        return None
    expired, changed = _close_invitation(conn, battle, BattleStatus.EXPIRED)
    return expired if changed else None

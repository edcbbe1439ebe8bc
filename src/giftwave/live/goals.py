"""Stream goals: "10,000 coins of Roses", "5,000 likes". Set by the stream's creator; progress
counts what arrives after the goal was set; reaching it is an event, once."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, func, insert, select, update

from giftwave.clock import now_us
from giftwave.db.tables import gift_sends, stream_goals, transfers
from giftwave.errors import Code, Invalid
from giftwave.live.events import GoalSet, GoalShown

TARGET_MAX: Final = 10**12


class GoalKind(enum.StrEnum):
    COINS = "coins"  # coins of gifts (of one gift when gift_id is set)
    LIKES = "likes"


@dataclass(frozen=True, slots=True)
class Goal:
    id: int
    stream_id: str
    kind: GoalKind
    gift_id: str | None
    target: int
    title: str
    created_at_us: int

    def event(self, progress: int) -> GoalShown:
        return GoalShown(
            goal_id=self.id,
            kind=self.kind.value,
            gift_id=self.gift_id,
            target=self.target,
            title=self.title,
            progress=progress,
            reached=progress >= self.target,
        )

    def set_event(self) -> GoalSet:
        """The goal as news for every node's room (and, its fields, the API's answer)."""
        return GoalSet(
            goal_id=self.id,
            kind=self.kind.value,
            gift_id=self.gift_id,
            target=self.target,
            title=self.title,
            created_at_us=self.created_at_us,
        )

    @classmethod
    def of_news(cls, stream_id: str, e: GoalSet) -> Goal:
        return cls(
            id=e.goal_id,
            stream_id=stream_id,
            kind=GoalKind(e.kind),
            gift_id=e.gift_id,
            target=e.target,
            title=e.title,
            created_at_us=e.created_at_us,
        )


def set_goal(
    conn: Connection, stream_id: str, kind: GoalKind, target: int, title: str, gift_id: str | None
) -> Goal:
    """The stream's new goal; the previous one is cleared."""
    title = title.strip()
    if not 0 < target <= TARGET_MAX:
        raise Invalid(Code.INVALID_GOAL, f"a goal's target is 1..{TARGET_MAX:,}")
    if not 1 <= len(title) <= 80 or not title.isprintable():
        raise Invalid(Code.INVALID_GOAL, "a goal's title is 1-80 printable characters")
    if kind is GoalKind.LIKES and gift_id is not None:
        raise Invalid(Code.INVALID_GOAL, "a likes goal names no gift")
    now = now_us()
    clear_goal(conn, stream_id, now)
    goal_id = conn.execute(
        insert(stream_goals)
        .values(
            stream_id=stream_id,
            kind=kind.value,
            gift_id=gift_id,
            target=target,
            title=title,
            created_at_us=now,
        )
        .returning(stream_goals.c.id)
    ).scalar_one()
    return Goal(int(goal_id), stream_id, kind, gift_id, target, title, now)


def clear_goal(conn: Connection, stream_id: str, at_us: int | None = None) -> None:
    conn.execute(
        update(stream_goals)
        .where(stream_goals.c.stream_id == stream_id, stream_goals.c.cleared_at_us.is_(None))
        .values(cleared_at_us=at_us or now_us())
    )


def current_goal(conn: Connection, stream_id: str) -> Goal | None:
    row = conn.execute(
        select(stream_goals)
        .where(stream_goals.c.stream_id == stream_id, stream_goals.c.cleared_at_us.is_(None))
        .order_by(stream_goals.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _to_goal(row)


def find_goal(conn: Connection, goal_id: int) -> Goal | None:
    """A goal by id, current or cleared since."""
    row = conn.execute(select(stream_goals).where(stream_goals.c.id == goal_id)).first()
    return None if row is None else _to_goal(row)


def _to_goal(row: Any) -> Goal:
    return Goal(
        int(row.id),
        row.stream_id,
        GoalKind(row.kind),
        row.gift_id,
        int(row.target),
        row.title,
        int(row.created_at_us),
    )


def committed_progress(conn: Connection, goal: Goal) -> int:
    """Coins toward a coins goal from committed gifts since it was set (likes are not stored)."""
    if goal.kind is not GoalKind.COINS:
        return 0
    query = (
        select(func.coalesce(func.sum(gift_sends.c.coins), 0))
        .select_from(gift_sends.join(transfers, transfers.c.id == gift_sends.c.transfer_id))
        .where(
            gift_sends.c.stream_id == goal.stream_id,
            gift_sends.c.created_at_us >= goal.created_at_us,
            gift_sends.c.reversed.is_(False),
        )
    )
    if goal.gift_id is not None:
        query = query.where(gift_sends.c.gift_id == goal.gift_id)
    return int(conn.execute(query).scalar_one())

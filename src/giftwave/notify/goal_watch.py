"""A goal is close: the live streams' current coin goals whose committed gifts reached
``CLOSE_SHARE`` of the target are told to the creator's opted-in followers, once per goal.

Off the gift path: a round every few seconds reads the goals of live streams whose creator has
followers opted in and that no notice was made for yet (bounded per round), then each one's
committed progress (live/goals.py, the same sum the room's snapshot starts from).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, String, cast, exists, select

from giftwave.db.tables import notices, notify_optins, stream_goals, streams
from giftwave.live.goals import Goal, GoalKind, committed_progress, find_goal
from giftwave.live.streams import StreamStatus
from giftwave.notify.notices import NoticeKind

CLOSE_SHARE: Final = 0.9
GOALS_PER_ROUND: Final = 200


@dataclass(frozen=True, slots=True)
class CloseGoal:
    goal: Goal
    creator_id: int
    progress: int


def close_goals(conn: Connection) -> list[CloseGoal]:
    """The goals to tell of now (none told yet, at least ``CLOSE_SHARE`` of the way)."""
    g = stream_goals.c
    told = exists().where(
        notices.c.kind == NoticeKind.GOAL.value,
        notices.c.subject == cast(g.id, String(64)),
        notices.c.creator_id == streams.c.creator_id,
    )
    rows = conn.execute(
        select(g.id, streams.c.creator_id)
        .join(streams, streams.c.id == g.stream_id)
        .where(
            g.cleared_at_us.is_(None),
            g.kind == GoalKind.COINS.value,
            streams.c.status == StreamStatus.LIVE.value,
            exists().where(notify_optins.c.creator_id == streams.c.creator_id),
            ~told,
        )
        .order_by(g.id)
        .limit(GOALS_PER_ROUND)
    ).all()
    close = []
    for goal_id, creator_id in rows:
        goal = find_goal(conn, int(goal_id))
        assert goal is not None
        progress = committed_progress(conn, goal)
        if progress >= goal.target * CLOSE_SHARE:
            close.append(CloseGoal(goal, int(creator_id), progress))
    return close

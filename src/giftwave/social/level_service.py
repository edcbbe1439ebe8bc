"""Gifter levels as the faces use them: the curve, one person's level and the creators they
support most, hiding it, and the loop that follows the ledger and announces level-ups.

    every LOOP_INTERVAL_S, on one node or many:
        follower.catch_up (a worker thread) ─► level-ups it committed ─► announcers (the room's
        ``level_up``, every node's badges: the app wires them) ─► badges wanted, read in one go

Hiding (``set_hidden``) hides the level from everybody else everywhere: the profile, the JSON,
the badge in rooms and the level-up announcements. The person still sees their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, desc, select

from giftwave.clock import now_us
from giftwave.db.tables import gifter_creators, gifter_levels, users
from giftwave.db.upsert import insert_for
from giftwave.errors import Code, Forbidden, NotFound
from giftwave.identity.users import User, find_user
from giftwave.periodic import PeriodicTask, Schedule
from giftwave.ratelimit import Rate, UserLimit
from giftwave.social.level_badges import LevelBadges
from giftwave.social.level_follower import LevelFollower, LevelUp, LevelUpObserver
from giftwave.social.levels import Curve, Progress

LOOP_INTERVAL_S: Final = 1.0
CHUNKS_PER_RUN: Final = 10  # up to 100,000 transfers a run while behind
TOP_CREATORS: Final = 5
# Hiding and showing again: a person flips it a few times, a script thousands (each is a write
# and a notice to every node).
VISIBILITY_CHANGES_PER_S: Final = 0.2
VISIBILITY_CHANGES_BURST: Final = 10
log = logging.getLogger(__name__)

# Told of the level-ups this node committed, after the commit (the room, the badges).
Announcer = Callable[[Sequence[LevelUp]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Supported:
    creator_id: int
    handle: str
    coins: int


@dataclass(frozen=True, slots=True)
class GifterLevel:
    """One person's level as the one asking may see it."""

    user_id: int
    handle: str
    progress: Progress
    hidden: bool
    top_creators: list[Supported]


class Levels:
    def __init__(
        self,
        db: Engine,
        curve: Curve,
        *,
        observers: Sequence[LevelUpObserver] = (),
        interval_s: float = LOOP_INTERVAL_S,
        follow: bool = True,
    ) -> None:
        self.db = db
        self.curve = curve
        self.follower = LevelFollower(db, curve, observers=observers)
        self.badges = LevelBadges(db, curve)
        self._announcers: list[Announcer] = []
        # False: the ledger is followed elsewhere (followers.py); the round announces what
        # the sources hand it.
        self._follow = follow
        self._sources: list[Callable[[], list[LevelUp]]] = []
        self.visibility_limit = UserLimit(
            "level-visibility",
            Rate(VISIBILITY_CHANGES_PER_S, VISIBILITY_CHANGES_BURST),
            code=Code.RATE_LIMITED,
            detail="too many changes to your level's visibility; try again later",
        )
        self._loop = PeriodicTask("gifter-levels", self.run, Schedule(interval_s))
        # One round at a time per process: the follower keeps the level-ups of its chunk until
        # the commit, and a round takes those of its own commits (another node's rounds run
        # at once, serialized by the position's row lock instead).
        self._round = asyncio.Lock()

    def add_announcer(self, announcer: Announcer) -> None:
        self._announcers.append(announcer)

    def add_source(self, take: Callable[[], list[LevelUp]]) -> None:
        """Level-ups committed elsewhere for this node to announce (the followers process)."""
        self._sources.append(take)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run(self) -> None:
        """One round: the ledger caught up, this node's level-ups announced, badges read."""
        async with self._round:
            await self._round_now()

    async def _round_now(self) -> None:
        if self._follow:
            await asyncio.to_thread(self.follower.catch_up, CHUNKS_PER_RUN)
        ups = self.follower.take_level_ups()
        for take in self._sources:
            ups.extend(take())
        if ups:
            for announce in self._announcers:
                try:
                    await announce(ups)
                except Exception:  # one announcer's failure must not stop the others
                    log.exception("level-up announcer failed")
        await self.badges.load_wanted()

    def level_of(self, user_id: int, asking: User | None) -> GifterLevel:
        """``user_id``'s level, progress and most supported creators; a hidden one only to
        themself (403 ``level_hidden``), an unknown or blocked person 404 ``user_not_found``."""
        with self.db.connect() as conn:
            person = find_user(conn, user_id)
            if person is None or person.blocked:
                raise NotFound(Code.USER_NOT_FOUND, f"no user {user_id}")
            found = level_in(conn, self.curve, person, asking)
        if found is None:
            raise Forbidden(Code.LEVEL_HIDDEN, "this person keeps their level to themself")
        return found

    def set_hidden(self, user: User, hidden: bool) -> GifterLevel:
        """``user`` hides (or shows again) their level; the badges follow on every node."""
        with self.db.begin() as conn:
            ins = insert_for(conn, gifter_levels)
            conn.execute(
                ins.values(
                    user_id=user.id, coins=0, peak_coins=0, hidden=hidden, updated_at_us=now_us()
                ).on_conflict_do_update(
                    index_elements=["user_id"], set_={"hidden": ins.excluded.hidden}
                )
            )
        return self.level_of(user.id, user)

    def badge_after(self, level: GifterLevel) -> int:
        """The badge everybody else now sees for ``level``'s owner (0: none)."""
        return 0 if level.hidden else level.progress.level


def level_in(
    conn: Connection, curve: Curve, person: User, asking: User | None
) -> GifterLevel | None:
    """``person``'s level as ``asking`` may see it (None: hidden from them), in ``conn``'s
    read: what the JSON answers and what a profile page shows."""
    coins, peak, hidden = _stored(conn, person.id)
    if hidden and (asking is None or asking.id != person.id):
        return None
    return GifterLevel(
        user_id=person.id,
        handle=person.handle,
        progress=curve.progress(coins, peak),
        hidden=hidden,
        top_creators=_top_creators(conn, person.id),
    )


def _stored(conn: Connection, user_id: int) -> tuple[int, int, bool]:
    c = gifter_levels.c
    row = conn.execute(select(c.coins, c.peak_coins, c.hidden).where(c.user_id == user_id)).first()
    if row is None:
        return 0, 0, False
    return int(row.coins), int(row.peak_coins), bool(row.hidden)


def _top_creators(conn: Connection, user_id: int) -> list[Supported]:
    """The creators ``user_id`` gave most coins to (net of reversals), most first."""
    g = gifter_creators.c
    rows = conn.execute(
        select(g.creator_id, users.c.handle, g.coins)
        .join(users, users.c.id == g.creator_id)
        .where(g.user_id == user_id, g.coins > 0, users.c.status != "blocked")
        .order_by(desc(g.coins), g.creator_id)
        .limit(TOP_CREATORS)
    ).all()
    return [Supported(int(c), str(h), int(n)) for c, h, n in rows]

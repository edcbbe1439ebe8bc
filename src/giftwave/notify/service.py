"""What users and producers do with notices, one call each: the unit of work around the rules
of ``preferences.py`` and ``notices.py``, and the service object that owns the sender.
Blocking calls: a route runs them on a worker thread."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Final

from sqlalchemy import Engine

from giftwave.clock import now_us
from giftwave.config import Settings
from giftwave.errors import Code, NotFound
from giftwave.identity.users import User, find_user, require_active
from giftwave.notify import fanout, notices, preferences, pruning
from giftwave.notify.goal_watch import close_goals
from giftwave.notify.notices import Notice, NoticeKind, NoticePolicy
from giftwave.notify.preferences import QuietHours, Subscription
from giftwave.notify.sender import PushSender, Render, SendPolicy
from giftwave.notify.vapid import VapidKey
from giftwave.periodic import PeriodicTask, Schedule
from giftwave.ratelimit import Rate, UserLimit

log = logging.getLogger(__name__)

CHANGES_PER_S: Final = 0.5  # opt-ins, browsers and settings: one change every two seconds
CHANGES_BURST: Final = 20


class Notifications:
    """The policy, the VAPID key (None: no pushes, the inbox still fills) and the sender."""

    def __init__(self, settings: Settings, db: Engine, render: Render) -> None:
        """``render`` writes a notice for a browser in its language (web/push_text.py)."""
        self.db = db
        self.allow_private = settings.push_allow_private_addresses
        secret = settings.vapid_private_key
        self.key = (
            None
            if secret is None
            else VapidKey(secret.get_secret_value(), subject=settings.vapid_subject)
        )
        # Without a VAPID key the unsubscribe links are signed by a key of this process only.
        signing = os.urandom(32) if self.key is None else self.key.signing_key("unsubscribe")
        self.policy = NoticePolicy(daily_cap=settings.push_daily_cap, unsubscribe_key=signing)
        self.sender = (
            None
            if self.key is None
            else PushSender(
                db,
                self.key,
                SendPolicy(
                    concurrency=settings.push_concurrency,
                    timeout_s=settings.push_timeout_s,
                    retry_base_ms=settings.push_retry_base_ms,
                    max_attempts=settings.push_max_attempts,
                    allow_private=self.allow_private,
                ),
                render,
                interval_s=settings.push_interval_s,
            )
        )

        self.limit = UserLimit(
            "notify",
            Rate(CHANGES_PER_S, CHANGES_BURST),
            code=Code.NOTIFY_RATE_LIMITED,
            detail="too many notification changes too fast; try again in a moment",
        )

        self._goals = PeriodicTask(
            "notify-goals", self.tell_close_goals, Schedule(settings.notify_goal_check_s)
        )
        # Followers told off the request (notify/fanout.py): woken by each enqueue here, and
        # every interval for rows other nodes queued or left behind.
        self._fanout = PeriodicTask(
            "notify-fanout", self.work_fanouts, Schedule(settings.notify_fanout_interval_s)
        )
        self.retention = pruning.Retention(
            notice_days=settings.notice_retention_days,
            push_job_days=settings.push_job_retention_days,
        )
        self._prune = PeriodicTask(
            "notify-prune", self.prune, Schedule(settings.notify_prune_interval_s)
        )

    @property
    def public_key(self) -> str | None:
        return None if self.key is None else self.key.public_b64

    def start(self) -> None:
        self._goals.start()
        self._fanout.start()
        self._prune.start()
        if self.sender is not None:
            self.sender.start()

    async def stop(self) -> None:
        await self._goals.stop()
        await self._fanout.stop()
        await self._prune.stop()
        if self.sender is not None:
            await self.sender.stop()

    async def tell_close_goals(self) -> None:
        """One round of "a goal is close" (off the gift path, on a worker thread)."""
        await asyncio.to_thread(self._tell_close_goals)

    def _tell_close_goals(self) -> int:
        with self.db.connect() as conn:
            close = close_goals(conn)
        for found in close:
            goal = found.goal
            payload = {
                "stream_id": goal.stream_id,
                "goal_id": goal.id,
                "title": goal.title,
                "target": goal.target,
                "progress": found.progress,
            }
            self.tell_followers(found.creator_id, NoticeKind.GOAL, str(goal.id), payload)
        return len(close)

    def tell_followers(
        self, creator_id: int, kind: NoticeKind, subject: str, payload: dict[str, Any]
    ) -> bool:
        """The notice queued for every opted-in follower (after the change it tells of
        committed): one row, whatever the followers; the fan-out loop tells them."""
        with self.db.begin() as conn:
            queued = fanout.enqueue(
                conn,
                creator_id=creator_id,
                kind=kind,
                subject=subject,
                payload=payload,
                now_us=now_us(),
            )
        if queued:
            self._fanout.wake()
        return queued

    async def prune(self) -> float | None:
        """One round of pruning (notify/pruning.py); at once again while there is more."""
        done = await asyncio.to_thread(pruning.prune, self.db, self.retention, now_us=now_us())
        full = pruning.BATCH * pruning.BATCHES_PER_ROUND
        more = max(done.notices, done.push_jobs, done.fanouts) >= full
        if done.notices or done.push_jobs or done.fanouts:
            log.info("notify-prune: %s", done)
        return 0.0 if more else None

    async def work_fanouts(self) -> float | None:
        """One round of the fan-out loop, on a worker thread; at once again while rows wait."""
        busy = await asyncio.to_thread(self._work_fanouts)
        return 0.0 if busy else None

    def _work_fanouts(self) -> bool:
        claims = fanout.claim(self.db, now_us=now_us())
        made = unfinished = 0
        for job in claims:
            current: fanout.FanoutClaim | None = job
            for _ in range(fanout.CHUNKS_PER_CLAIM):
                assert current is not None
                current, told = fanout.work_chunk(self.db, self.policy, current, now_us=now_us())
                made += told
                if current is None:
                    break
            if current is not None:
                fanout.release(self.db, current)  # the rest next round, here or elsewhere
                unfinished += 1
        if made and self.sender is not None:
            self.sender.wake()
        return len(claims) == fanout.CLAIM_MAX or unfinished > 0


def opt_in(db: Engine, user: User, creator_id: int) -> bool:
    require_active(user)
    with db.begin() as conn:
        creator = find_user(conn, creator_id)
        if creator is None:
            raise NotFound(Code.USER_NOT_FOUND, "no such creator")
        return preferences.opt_in(conn, user.id, creator_id, now_us())


def is_opted_in(db: Engine, user_id: int, creator_id: int) -> bool:
    with db.connect() as conn:
        return preferences.is_opted_in(conn, user_id, creator_id)


def opt_out(db: Engine, user: User, creator_id: int) -> bool:
    with db.begin() as conn:
        return preferences.opt_out(conn, user.id, creator_id)


def set_quiet_hours(db: Engine, user: User, quiet: QuietHours) -> QuietHours:
    with db.begin() as conn:
        return preferences.set_quiet_hours(conn, user.id, quiet, now_us())


def subscribe(
    db: Engine,
    user: User,
    *,
    endpoint: str,
    p256dh: str,
    auth: str,
    allow_private: bool,
    locale: str,
) -> Subscription:
    """The browser's subscription, its notices to be written in ``locale``."""
    require_active(user)
    with db.begin() as conn:
        return preferences.add_subscription(
            conn,
            user.id,
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            allow_private=allow_private,
            at_us=now_us(),
            locale=locale,
        )


def unsubscribe_browser(db: Engine, user: User, subscription_id: int) -> bool:
    with db.begin() as conn:
        return preferences.remove_subscription(conn, user.id, subscription_id)


def inbox(db: Engine, user: User, *, limit: int, before_id: int | None) -> tuple[list[Notice], int]:
    with db.connect() as conn:
        return notices.inbox_page(conn, user.id, limit=limit, before_id=before_id)


def mark_read(db: Engine, user: User, notice_id: int | None) -> int:
    with db.begin() as conn:
        return notices.mark_read(conn, user.id, notice_id, now_us())


def unsubscribe_by_token(db: Engine, policy: NoticePolicy, token: str) -> tuple[int, int]:
    with db.begin() as conn:
        return notices.unsubscribe(conn, policy.unsubscribe_key, token)

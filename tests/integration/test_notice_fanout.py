"""Telling followers runs off the request (notify/fanout.py) and old rows are pruned
(notify/pruning.py), on SQLite and PostgreSQL:

- a creator with thousands of opted-in followers goes live: the go-live writes one queued row
  and no notice (the answer waits for none of them); the loop then tells every follower once;
- a worker that dies mid-way (its lease runs out) is resumed from its last chunk by another,
  and a chunk written under a lost lease rolls back: still once per follower;
- pruning deletes notices past their retention (with their push jobs), ended push jobs and
  done fan-outs past theirs, and keeps what is recent or still pending.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import pytest
from sqlalchemy import Engine, func, insert, select

from giftwave.config import Settings
from giftwave.db.tables import notice_fanouts, notices, notify_optins, push_jobs
from giftwave.identity.users import AgeRule, Role, User, create_user
from giftwave.live import stream_service
from giftwave.notify import fanout, pruning
from giftwave.notify.fanout import LeaseLost
from giftwave.notify.notices import FANOUT_CHUNK, NoticeKind, NoticePolicy
from giftwave.notify.service import Notifications
from giftwave.web import push_text

FOLLOWERS: Final = 3 * FANOUT_CHUNK + 17
CREATOR: Final = 1
POLICY: Final = NoticePolicy(daily_cap=5, unsubscribe_key=b"k" * 32)
DAY_US: Final = pruning.DAY_US


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _followers(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(notify_optins),
            [{"user_id": 1000 + i, "creator_id": CREATOR, "created_at_us": 0} for i in range(n)],
        )


def _told_once(engine: Engine) -> None:
    with engine.connect() as conn:
        per_user = conn.execute(
            select(notices.c.user_id, func.count()).group_by(notices.c.user_id)
        ).all()
    assert len(per_user) == FOLLOWERS
    assert {n for _, n in per_user} == {1}


def _creator(engine: Engine) -> User:
    with engine.begin() as conn:
        return create_user(
            conn,
            handle="luna",
            role=Role.CREATOR,
            birth_date=date(1990, 1, 1),
            country="US",
            today=date(2026, 12, 6),
            age_rule=AgeRule(min_age=18, by_country={}),
        )


def test_going_live_queues_one_row_and_the_loop_tells_everyone(sa_engine: Engine) -> None:
    notifications = Notifications(
        Settings(database_url=str(sa_engine.url)), sa_engine, push_text.render
    )
    creator = _creator(sa_engine)
    _followers_of(sa_engine, creator.id)
    stream = stream_service.go_live(
        sa_engine, creator, title="Piano", language="en", playback_url=None,
        notices=notifications,
    )  # fmt: skip
    # The request's work: one queued row; not one notice yet (the loop is not running).
    assert _count(sa_engine, notices) == 0
    assert _count(sa_engine, notice_fanouts) == 1
    # Told again (a retry, another producer): still one row.
    assert not notifications.tell_followers(creator.id, NoticeKind.LIVE, stream.id, {})

    for _ in range(FOLLOWERS // FANOUT_CHUNK + 2):
        if not notifications._work_fanouts():
            break
    _told_once(sa_engine)
    with sa_engine.connect() as conn:
        assert conn.execute(select(notice_fanouts.c.status)).scalar_one() == fanout.DONE


def _followers_of(engine: Engine, creator_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(notify_optins),
            [
                {"user_id": 100_000 + i, "creator_id": creator_id, "created_at_us": 0}
                for i in range(FOLLOWERS)
            ],
        )


def test_a_dead_worker_is_resumed_and_a_lost_lease_writes_nothing(sa_engine: Engine) -> None:
    _followers(sa_engine, FOLLOWERS)
    now = 10 * fanout.LEASE_US
    with sa_engine.begin() as conn:
        assert fanout.enqueue(
            conn, creator_id=CREATOR, kind=NoticeKind.LIVE, subject="s1", payload={}, now_us=now
        )
    [first] = fanout.claim(sa_engine, now_us=now)
    assert fanout.claim(sa_engine, now_us=now) == []  # held: no one else gets it
    after_one, made = fanout.work_chunk(sa_engine, POLICY, first, now_us=now)
    assert made == FANOUT_CHUNK
    assert after_one is not None
    # The worker dies here. Past its lease another one takes the row over, from chunk two.
    later = now + fanout.LEASE_US + 1
    [second] = fanout.claim(sa_engine, now_us=later)
    assert second.after_user_id == after_one.after_user_id
    with pytest.raises(LeaseLost):  # the first worker wakes up: its chunk is refused
        fanout.work_chunk(sa_engine, POLICY, after_one, now_us=later)
    assert _count(sa_engine, notices) == FANOUT_CHUNK
    current: fanout.FanoutClaim | None = second
    while current is not None:
        current, _ = fanout.work_chunk(sa_engine, POLICY, current, now_us=later)
    _told_once(sa_engine)


def test_pruning_keeps_what_is_recent_or_pending(sa_engine: Engine) -> None:
    now = 400 * DAY_US
    retention = pruning.Retention(notice_days=90, push_job_days=7)
    old, recent = now - 91 * DAY_US, now - 1 * DAY_US
    with sa_engine.begin() as conn:
        rows = [
            {"user_id": u, "creator_id": 9, "kind": "live", "subject": s, "payload": "{}",
             "pushed": True, "created_at_us": at}
            for u, s, at in ((1, "old", old), (1, "new", recent), (2, "old", old))
        ]  # fmt: skip
        ids = conn.execute(insert(notices).returning(notices.c.id), rows).scalars().all()
        old_notice, new_notice = ids[0], ids[1]
        conn.execute(
            insert(push_jobs),
            [
                {"notice_id": n, "subscription_id": sub, "status": status, "attempts": 1,
                 "next_attempt_at_us": 0, "created_at_us": at}
                for n, sub, status, at in (
                    (old_notice, 1, "pending", old),  # goes with its notice
                    (new_notice, 1, "sent", now - 8 * DAY_US),  # ended, past 7 days
                    (new_notice, 2, "failed", recent),  # ended, recent
                    (new_notice, 3, "pending", now - 8 * DAY_US),  # still to send
                )
            ],
        )  # fmt: skip
        conn.execute(
            insert(notice_fanouts),
            [
                {"creator_id": 9, "kind": "live", "subject": s, "payload": "{}",
                 "after_user_id": -1, "status": status, "lease_until_us": 0,
                 "created_at_us": now - 8 * DAY_US}
                for s, status in (("a", "done"), ("b", "pending"))
            ],
        )  # fmt: skip
    done = pruning.prune(sa_engine, retention, now_us=now)
    assert done == pruning.Pruned(notices=2, push_jobs=1, fanouts=1)
    with sa_engine.connect() as conn:
        assert conn.execute(select(notices.c.subject)).scalars().all() == ["new"]
        left = conn.execute(select(push_jobs.c.subscription_id).order_by(push_jobs.c.id))
        assert left.scalars().all() == [2, 3]
        assert conn.execute(select(notice_fanouts.c.subject)).scalars().all() == ["b"]
    assert pruning.prune(sa_engine, retention, now_us=now) == pruning.Pruned(0, 0, 0)

"""The fan-out queue: telling a creator's followers happens off the request that caused it.

A producer (going live, a battle accepted, a goal close) only adds one row to
``notice_fanouts`` (``enqueue``: one small transaction, however many followers). The
``notify-fanout`` loop, on every node, claims a due row with a lease (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; a conditional UPDATE on both) and works it chunk by chunk: each chunk's
inbox rows and push jobs (``notices._notify_chunk``) and the row's cursor (``after_user_id``)
are written in one transaction, guarded by the lease, so a process that dies mid-way leaves a
row that another node resumes from the last committed chunk when the lease ends; and the
notices' own unique key (user, kind, subject) would refuse a second row anyway: once per
follower.

Bounded: at most ``QUEUE_MAX`` rows pending (a producer past it logs and drops the notice:
telling followers must never fail or slow the change it tells of), ``CLAIM_MAX`` rows a round,
``CHUNKS_PER_CLAIM`` chunks each before the round lets another node or row have a turn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import Connection, Engine, func, select, update

from giftwave.db.claims import due_ids
from giftwave.db.tables import notice_fanouts
from giftwave.db.upsert import insert_for
from giftwave.notify.notices import (
    NoticeKind,
    NoticePolicy,
    followers_after,
    notice_body,
    notify_chunk,
)

log = logging.getLogger(__name__)

PENDING: Final = "pending"
DONE: Final = "done"
QUEUE_MAX: Final = 10_000  # pending fan-outs at most (each is one creator's one notice)
CLAIM_MAX: Final = 4  # rows one round claims
CHUNKS_PER_CLAIM: Final = 40  # 20,000 followers a row a round, then the lease is let go
LEASE_US: Final = 60_000_000  # a chunk takes well under a second; renewed at every chunk

f = notice_fanouts.c


@dataclass(frozen=True, slots=True)
class FanoutClaim:
    id: int
    creator_id: int
    kind: NoticeKind
    subject: str
    payload: dict[str, Any]
    after_user_id: int
    lease_until_us: int  # the lease's end: the token every write of this claim checks


def enqueue(
    conn: Connection,
    *,
    creator_id: int,
    kind: NoticeKind,
    subject: str,
    payload: dict[str, Any],
    now_us: int,
) -> bool:
    """The notice queued for the creator's followers (told once per subject: again is a
    no-op); False when the queue is full or it was queued before."""
    pending = conn.execute(
        select(func.count()).select_from(notice_fanouts).where(f.status == PENDING)
    ).scalar_one()
    if pending >= QUEUE_MAX:
        log.warning("notice fan-out queue full (%d): %s %s not told", pending, kind, subject)
        return False
    row = {
        "creator_id": creator_id,
        "kind": kind.value,
        "subject": subject,
        "payload": orjson.dumps(payload).decode(),
        "after_user_id": -1,
        "status": PENDING,
        "lease_until_us": 0,  # due at once
        "created_at_us": now_us,
    }
    made = conn.execute(
        insert_for(conn, notice_fanouts).on_conflict_do_nothing().returning(f.id), [row]
    ).all()
    return bool(made)


def claim(db: Engine, *, now_us: int, limit: int = CLAIM_MAX) -> list[FanoutClaim]:
    """Up to ``limit`` due fan-outs leased to this caller; rows another node holds are skipped."""
    lease_until = now_us + LEASE_US
    with db.begin() as conn:
        due = due_ids(
            f.id, f.status == PENDING, f.lease_until_us <= now_us, order_by=f.id, limit=limit
        )
        claimed = conn.execute(
            update(notice_fanouts)
            .where(f.id.in_(select(due.c.id)), f.status == PENDING, f.lease_until_us <= now_us)
            .values(lease_until_us=lease_until)
            .returning(f.id, f.creator_id, f.kind, f.subject, f.payload, f.after_user_id)
        ).all()
    return [
        FanoutClaim(
            id=int(r.id),
            creator_id=int(r.creator_id),
            kind=NoticeKind(r.kind),
            subject=r.subject,
            payload=orjson.loads(r.payload),
            after_user_id=int(r.after_user_id),
            lease_until_us=lease_until,
        )
        for r in claimed
    ]


def release(db: Engine, job: FanoutClaim) -> None:
    """Due again at once (for this node or another): a round's share of chunks is done."""
    with db.begin() as conn:
        conn.execute(
            update(notice_fanouts)
            .where(f.id == job.id, f.status == PENDING, f.lease_until_us == job.lease_until_us)
            .values(lease_until_us=0)
        )


class LeaseLost(Exception):
    """Another node took the row over (our lease ran out): this chunk's writes roll back."""


def work_chunk(
    db: Engine, policy: NoticePolicy, job: FanoutClaim, *, now_us: int
) -> tuple[FanoutClaim | None, int]:
    """One chunk of ``job``'s followers told, in one transaction with its cursor; the claim
    to go on with (None: every follower told, the row done) and how many notices were made."""
    renewed = now_us + LEASE_US
    with db.begin() as conn:
        chunk = followers_after(conn, job.creator_id, job.after_user_id)
        mine = (f.id == job.id) & (f.status == PENDING) & (f.lease_until_us == job.lease_until_us)
        if not chunk:
            done = conn.execute(
                update(notice_fanouts).where(mine).values(status=DONE, done_at_us=now_us)
            ).rowcount
            if done != 1:
                raise LeaseLost(job.id)
            return None, 0
        moved = conn.execute(
            update(notice_fanouts)
            .where(mine)
            .values(after_user_id=chunk[-1], lease_until_us=renewed)
        ).rowcount
        if moved != 1:
            raise LeaseLost(job.id)  # rolls the chunk back: the new holder tells them
        body = notice_body(conn, job.creator_id, job.kind, job.payload)
        made = notify_chunk(
            conn, policy, chunk, job.creator_id, job.kind, job.subject, body, now_us
        )
    nxt = FanoutClaim(
        job.id,
        job.creator_id,
        job.kind,
        job.subject,
        job.payload,
        after_user_id=chunk[-1],
        lease_until_us=renewed,
    )
    return nxt, made

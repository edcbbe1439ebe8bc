"""The outbox: one row per (endpoint, event), pending until delivered or given up.

    pending ──claim (lease)──► attempt ──2xx──► delivered
       ▲                          │
       └── retry after backoff ◄──┴── otherwise; after the last attempt: failed

A claim moves ``next_attempt_at_us`` to the end of a lease and that value is the claim's token:
a result is recorded only while the lease still holds, and a process that dies mid-attempt
leaves a row that is due again when its lease ends (at least once, never lost).

Bounded: past ``max_pending`` pending deliveries an endpoint's new events are dropped and
counted on the endpoint; finished rows are pruned after ``RETENTION_US`` and beyond the newest
``KEEP_FINISHED_PER_ENDPOINT`` of each endpoint.
"""

from __future__ import annotations

import enum
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, delete, func, select, update

from giftwave import metrics
from giftwave.clock import now_us as wall_clock_us
from giftwave.db.claims import due_ids
from giftwave.db.tables import webhook_deliveries, webhook_endpoints
from giftwave.db.upsert import insert_for
from giftwave.economy.subscription_gifts import SubsGiven
from giftwave.economy.subscriptions import SubscriptionChange
from giftwave.live.battles import Battle
from giftwave.live.thanks import Thanks
from giftwave.social.level_follower import LevelUp
from giftwave.ttl_cache import TtlCache
from giftwave.webhooks.endpoints import Endpoint, endpoints_of
from giftwave.webhooks.events import (
    Event,
    EventType,
    battle_ended_event,
    level_up_event,
    subscription_event,
    subscriptions_gifted_event,
    thanks_sent_event,
)

# Retry n (1-based) waits about base * BACKOFF_FACTORS[n-1]: 10 s, 30 s, 2 min, 10 min, 1 h,
# 3 h, 6 h, 12 h at the default base; the last factor repeats if more attempts are allowed.
BACKOFF_FACTORS: Final = (1, 3, 12, 60, 360, 1080, 2160, 4320)
JITTER: Final = 0.2  # ± this share, so endpoints that failed together do not retry together
ERROR_MAX_CHARS: Final = 500
DEFAULT_MAX_PENDING: Final = 10_000
RETENTION_US: Final = 7 * 86_400 * 1_000_000
KEEP_FINISHED_PER_ENDPOINT: Final = 10_000
PRUNE_BATCH_ROWS: Final = 5_000

d = webhook_deliveries
e = webhook_endpoints


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


PENDING: Final = DeliveryStatus.PENDING.value


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_ms: int
    max_attempts: int
    disable_after_us: int

    def delay_us(self, attempts_made: int) -> int:
        """How long after its ``attempts_made``-th failed attempt a delivery is tried again."""
        assert attempts_made >= 1
        factor = BACKOFF_FACTORS[min(attempts_made, len(BACKOFF_FACTORS)) - 1]
        return int(self.base_ms * 1000 * factor * random.uniform(1 - JITTER, 1 + JITTER))


class PendingGauge:
    """About how many deliveries each endpoint has pending: counted at most once a second and
    kept up to date with what this process adds, so the cap costs no query per event."""

    def __init__(self, max_pending: int) -> None:
        assert max_pending >= 1
        self.max_pending = max_pending
        self._counts: TtlCache[int, int] = TtlCache(max_entries=100_000, ttl_s=1.0)

    def has_room(self, conn: Connection, endpoint_id: int) -> bool:
        count = self._counts.get(endpoint_id)
        if count is None:
            capped = (
                select(d.c.id)
                .where(d.c.endpoint_id == endpoint_id, d.c.status == PENDING)
                .limit(self.max_pending)
                .subquery()
            )
            count = int(conn.execute(select(func.count()).select_from(capped)).scalar_one())
            self._counts.put(endpoint_id, count)
        return count < self.max_pending

    def added(self, endpoint_id: int) -> None:
        count = self._counts.get(endpoint_id)
        if count is not None:
            self._counts.put(endpoint_id, count + 1)


def enqueue(
    conn: Connection, event: Event, endpoints: Iterable[Endpoint], gauge: PendingGauge
) -> int:
    """A pending delivery of ``event`` to each endpoint; how many rows are new (an event already
    queued for an endpoint is not queued again). Endpoints at their cap drop it, counted."""
    body = event.body()
    created = wall_clock_us()
    rows: list[dict[str, Any]] = []
    dropped: Counter[int] = Counter()
    for endpoint in endpoints:
        assert endpoint.creator_id == event.creator_id, "an event goes to its creator's endpoints"
        if not gauge.has_room(conn, endpoint.id):
            dropped[endpoint.id] += 1
            continue
        rows.append(
            {
                "endpoint_id": endpoint.id,
                "event_id": event.event_id,
                "type": event.type.value,
                "payload": body,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at_us": created,
                "created_at_us": created,
            }
        )
    if dropped:
        metrics.WEBHOOK_DROPPED.inc(sum(dropped.values()))
    for endpoint_id, count in sorted(dropped.items()):
        conn.execute(
            update(e).where(e.c.id == endpoint_id).values(dropped_events=e.c.dropped_events + count)
        )
    if not rows:
        return 0
    statement = insert_for(conn, d).on_conflict_do_nothing().returning(d.c.endpoint_id)
    inserted = [int(endpoint_id) for (endpoint_id,) in conn.execute(statement, rows).all()]
    for endpoint_id in inserted:
        gauge.added(endpoint_id)
    return len(inserted)


def enqueue_battle_ended(
    conn: Connection, battle: Battle, *, max_pending: int = DEFAULT_MAX_PENDING
) -> int:
    """``battle_ended`` to each of the battle's creators that subscribed to it; how many
    deliveries were queued. The observer of ``live.battles.finish``, called in the transaction
    that records the result: the outbox row then exists exactly when the result does.
    Idempotent by the battle's id."""
    gauge = PendingGauge(max_pending)
    at = wall_clock_us()
    queued = 0
    for creator_id in sorted({battle.a.creator_id, battle.b.creator_id}):
        wanting = [x for x in endpoints_of(conn, creator_id) if x.wants(EventType.BATTLE_ENDED)]
        if wanting:
            queued += enqueue(conn, battle_ended_event(battle, creator_id, at), wanting, gauge)
    return queued


def enqueue_level_ups(
    conn: Connection, ups: Sequence[LevelUp], *, max_pending: int = DEFAULT_MAX_PENDING
) -> int:
    """``gifter.level_up`` to the endpoints of each level-up's creator that subscribed to it;
    how many deliveries were queued. The observer of social/level_follower.py, called in the
    transaction that records the level-ups: the rows exist exactly when the level-ups do.
    Idempotent by (gifter, level)."""
    gauge = PendingGauge(max_pending)
    queued = 0
    wanting: dict[int, list[Endpoint]] = {}
    for up in ups:
        if up.creator_id not in wanting:
            wanting[up.creator_id] = [
                x for x in endpoints_of(conn, up.creator_id) if x.wants(EventType.GIFTER_LEVEL_UP)
            ]
        if wanting[up.creator_id]:
            queued += enqueue(conn, level_up_event(up), wanting[up.creator_id], gauge)
    return queued


def enqueue_subscription_change(
    conn: Connection, change: SubscriptionChange, *, max_pending: int = DEFAULT_MAX_PENDING
) -> int:
    """``subscription.started`` / ``renewed`` / ``lapsed`` to the creator's endpoints that
    subscribed to it; how many deliveries were queued. The observer of economy/subscriptions.py,
    called in the transaction that moves the subscription: the rows exist exactly when the move
    does. Idempotent by (subscription, period, kind)."""
    event = subscription_event(change)
    wanting = [x for x in endpoints_of(conn, event.creator_id) if x.wants(event.type)]
    return enqueue(conn, event, wanting, PendingGauge(max_pending)) if wanting else 0


def enqueue_subscriptions_gifted(
    conn: Connection, given: SubsGiven, *, max_pending: int = DEFAULT_MAX_PENDING
) -> int:
    """``subscription.gifted`` to the creator's endpoints that subscribed to it; idempotent by
    the purchase (a retry queues nothing new)."""
    event = subscriptions_gifted_event(given)
    wanting = [x for x in endpoints_of(conn, event.creator_id) if x.wants(event.type)]
    return enqueue(conn, event, wanting, PendingGauge(max_pending)) if wanting else 0


def enqueue_thanks_sent(
    conn: Connection, thanks: Thanks, *, max_pending: int = DEFAULT_MAX_PENDING
) -> int:
    """``thanks.sent`` to the creator's endpoints that subscribed to it. The observer of
    live/thanks.py, called in the transaction that stores the thank-you: the rows exist exactly
    when it does. Idempotent by the stream."""
    event = thanks_sent_event(thanks)
    wanting = [x for x in endpoints_of(conn, event.creator_id) if x.wants(event.type)]
    return enqueue(conn, event, wanting, PendingGauge(max_pending)) if wanting else 0


@dataclass(frozen=True, slots=True)
class Claim:
    """One delivery this process is attempting, until ``lease_until_us``."""

    delivery_id: int
    endpoint_id: int
    event_id: str
    type: str
    payload: str
    attempts: int
    lease_until_us: int
    creator_id: int
    url: str
    secret: str = field(repr=False)  # never in a log line


def claim_due(conn: Connection, *, now_us: int, limit: int, lease_us: int) -> list[Claim]:
    """Up to ``limit`` due deliveries of enabled endpoints, each leased to this caller. Rows
    another node holds locked are skipped (PostgreSQL); the conditions are checked again by the
    UPDATE itself, so two claimers never take one row (SQLite serializes them anyway)."""
    active = select(e.c.id).where(e.c.disabled_at_us.is_(None))
    due = due_ids(
        d.c.id,
        d.c.status == PENDING,
        d.c.next_attempt_at_us <= now_us,
        d.c.endpoint_id.in_(active),
        order_by=d.c.next_attempt_at_us,
        limit=limit,
    )
    lease_until = now_us + lease_us
    claimed = conn.execute(
        update(d)
        .where(
            d.c.id.in_(select(due.c.id)), d.c.status == PENDING, d.c.next_attempt_at_us <= now_us
        )
        .values(next_attempt_at_us=lease_until)
        .returning(d.c.id, d.c.endpoint_id, d.c.event_id, d.c.type, d.c.payload, d.c.attempts)
    ).all()
    if not claimed:
        return []
    targets = {
        int(row.id): row
        for row in conn.execute(
            select(e.c.id, e.c.creator_id, e.c.url, e.c.secret).where(
                e.c.id.in_({r.endpoint_id for r in claimed})
            )
        )
    }
    return [
        Claim(
            delivery_id=int(r.id),
            endpoint_id=int(r.endpoint_id),
            event_id=r.event_id,
            type=r.type,
            payload=r.payload,
            attempts=int(r.attempts),
            lease_until_us=lease_until,
            creator_id=int(targets[int(r.endpoint_id)].creator_id),
            url=targets[int(r.endpoint_id)].url,
            secret=targets[int(r.endpoint_id)].secret,
        )
        for r in claimed
        if int(r.endpoint_id) in targets  # deleted meanwhile: its rows went with it
    ]


def _still_mine(claim: Claim) -> Any:
    return (
        (d.c.id == claim.delivery_id)
        & (d.c.status == PENDING)
        & (d.c.next_attempt_at_us == claim.lease_until_us)
    )


def release(conn: Connection, claims: Iterable[Claim], *, now_us: int) -> None:
    """Hand unfinished claims back (a stopping process): due again at once, attempt not counted."""
    for claim in claims:
        conn.execute(update(d).where(_still_mine(claim)).values(next_attempt_at_us=now_us))


def record_delivered(conn: Connection, claim: Claim, *, status_code: int, now_us: int) -> None:
    done = conn.execute(
        update(d)
        .where(_still_mine(claim))
        .values(
            status=DeliveryStatus.DELIVERED.value,
            attempts=d.c.attempts + 1,
            last_status=status_code,
            last_error=None,
            delivered_at_us=now_us,
        )
    ).rowcount
    if done:
        conn.execute(
            update(e)
            .where(e.c.id == claim.endpoint_id, e.c.failing_since_us.is_not(None))
            .values(failing_since_us=None)
        )


@dataclass(frozen=True, slots=True)
class Failure:
    retry_at_us: int | None  # None: given up (or no longer ours)
    endpoint_disabled: bool


def record_failed_attempt(
    conn: Connection,
    claim: Claim,
    *,
    status_code: int | None,
    error: str,
    now_us: int,
    policy: RetryPolicy,
) -> Failure:
    """Schedule the next attempt, or give up after the last; an endpoint failing for longer
    than the policy allows is disabled, its pending deliveries failed with it."""
    attempts = claim.attempts + 1
    retry_at = None if attempts >= policy.max_attempts else now_us + policy.delay_us(attempts)
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_status": status_code,
        "last_error": error[:ERROR_MAX_CHARS],
    }
    if retry_at is None:
        values.update(status=DeliveryStatus.FAILED.value, next_attempt_at_us=now_us)
    else:
        values.update(next_attempt_at_us=retry_at)
    if not conn.execute(update(d).where(_still_mine(claim)).values(**values)).rowcount:
        return Failure(None, endpoint_disabled=False)
    conn.execute(
        update(e)
        .where(e.c.id == claim.endpoint_id, e.c.failing_since_us.is_(None))
        .values(failing_since_us=now_us)
    )
    disabled = conn.execute(
        update(e)
        .where(
            e.c.id == claim.endpoint_id,
            e.c.disabled_at_us.is_(None),
            e.c.failing_since_us <= now_us - policy.disable_after_us,
        )
        .values(disabled_at_us=now_us)
    ).rowcount
    if disabled:
        _fail_pending(conn, d.c.endpoint_id == claim.endpoint_id, "the endpoint was disabled")
        return Failure(None, endpoint_disabled=True)
    return Failure(retry_at, endpoint_disabled=False)


def _fail_pending(conn: Connection, condition: Any, reason: str) -> int:
    return int(
        conn.execute(
            update(d)
            .where(d.c.status == PENDING, condition)
            .values(status=DeliveryStatus.FAILED.value, last_error=reason)
        ).rowcount
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    event_id: str
    type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at_us: int | None
    last_status: int | None
    last_error: str | None
    created_at_us: int
    delivered_at_us: int | None
    payload: str


def recent_deliveries(
    conn: Connection, endpoint_id: int, *, limit: int, before_id: int | None
) -> list[Delivery]:
    """Newest first; pass the last id seen as ``before_id`` for the next page."""
    query = select(d).where(d.c.endpoint_id == endpoint_id)
    if before_id is not None:
        query = query.where(d.c.id < before_id)
    rows = conn.execute(query.order_by(d.c.id.desc()).limit(limit)).all()
    return [
        Delivery(
            id=int(r.id),
            event_id=r.event_id,
            type=r.type,
            status=DeliveryStatus(r.status),
            attempts=int(r.attempts),
            next_attempt_at_us=int(r.next_attempt_at_us) if r.status == PENDING else None,
            last_status=r.last_status,
            last_error=r.last_error,
            created_at_us=int(r.created_at_us),
            delivered_at_us=r.delivered_at_us,
            payload=r.payload,
        )
        for r in rows
    ]


def pending_deliveries(conn: Connection, *, cap: int) -> int:
    """How many deliveries are pending (due, or waiting for a retry), counting up to ``cap``:
    a backlog in the millions is reported as ``cap``, the count never scans further."""
    capped = select(d.c.id).where(d.c.status == PENDING).limit(cap).subquery()
    return int(conn.execute(select(func.count()).select_from(capped)).scalar_one())


def fail_undeliverable(conn: Connection) -> int:
    """Pending rows of endpoints disabled or deleted meanwhile (an event enqueued just as it
    happened) are failed: nothing would ever claim them."""
    active = select(e.c.id).where(e.c.disabled_at_us.is_(None))
    return _fail_pending(conn, d.c.endpoint_id.not_in(active), "the endpoint is disabled or gone")


def prune(
    conn: Connection,
    *,
    now_us: int,
    endpoint_ids: Iterable[int],
    retention_us: int = RETENTION_US,
    keep_per_endpoint: int = KEEP_FINISHED_PER_ENDPOINT,
) -> int:
    """Finished rows past the retention, and beyond the newest ``keep_per_endpoint`` of each
    endpoint named; how many rows went. Only the oldest rows by id are looked at for age (ids
    grow with time), so a round costs the same however long the table is."""
    oldest = select(d.c.id).order_by(d.c.id).limit(PRUNE_BATCH_ROWS)
    removed = conn.execute(
        delete(d).where(
            d.c.id.in_(oldest),
            d.c.status != PENDING,
            d.c.created_at_us < now_us - retention_us,
        )
    ).rowcount
    for endpoint_id in endpoint_ids:
        finished = (d.c.endpoint_id == endpoint_id) & (d.c.status != PENDING)
        boundary = (
            select(d.c.id)
            .where(finished)
            .order_by(d.c.id.desc())
            .offset(keep_per_endpoint)
            .limit(1)
            .scalar_subquery()
        )
        removed += conn.execute(delete(d).where(finished, d.c.id <= boundary)).rowcount
    return int(removed)

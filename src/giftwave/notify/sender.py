"""The push sender: claims due push jobs (a lease, as the webhook outbox does), encrypts each
notice for its browser (RFC 8291, aes128gcm, by ``pywebpush``), signs the request with the
operator's VAPID key (RFC 8292) and POSTs it to the subscription's push service.

    pending ──claim──► send ──2xx──► sent
       ▲                 ├── 404/410 ──► the subscription is gone: deleted, job failed
       └─ retry (backoff)┴── 429/5xx/network ──► after the last attempt: failed
    any other 4xx ──► failed (retrying would not help)

What a browser gets is the notice as ``render`` writes it for the subscription's language (the
web layer's, handed in: this package imports no web): the title and body a service worker
shows, already in the recipient's words (docs/notifications.md, "Languages").

Bounded: ``concurrency`` sends at once, each within ``timeout_s``; at most ``batch`` claimed
per round. The endpoint's host is resolved and must be public before every send (egress.py),
unless private addresses are allowed (development).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, delete, select, update

from giftwave.clock import now_us as wall_clock_us
from giftwave.db.claims import due_ids
from giftwave.db.tables import notices, push_jobs, push_subscriptions
from giftwave.egress import HostUnknown, first_not_public, resolve_async
from giftwave.notify.vapid import VapidKey
from giftwave.periodic import PeriodicTask, Schedule

log = logging.getLogger(__name__)

BATCH: Final = 200
LEASE_US: Final = 60_000_000
PUSH_TTL_S: Final = 3600  # a notice older than an hour is not worth waking a phone for
BACKOFF_FACTORS: Final = (1, 3, 12, 60, 360)
SENT: Final = "sent"
FAILED: Final = "failed"
PENDING: Final = "pending"

j = push_jobs.c
s = push_subscriptions.c


@dataclass(frozen=True, slots=True)
class PushClaim:
    job_id: int
    attempts: int
    lease_until_us: int
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str
    payload: str  # the notice as stored (JSON)
    locale: str  # the subscription's language


# (the notice as stored, JSON; the subscription's language) → the bytes the browser decrypts
Render = Callable[[str, str], bytes]


@dataclass(frozen=True, slots=True)
class SendPolicy:
    concurrency: int
    timeout_s: float
    retry_base_ms: int
    max_attempts: int
    allow_private: bool

    def delay_us(self, attempts_made: int) -> int:
        factor = BACKOFF_FACTORS[min(attempts_made, len(BACKOFF_FACTORS)) - 1]
        return int(self.retry_base_ms * 1000 * factor * random.uniform(0.8, 1.2))


def claim_due(db: Engine, *, now_us: int, limit: int) -> list[PushClaim]:
    """Up to ``limit`` due jobs, leased to this caller; rows another node holds are skipped."""
    lease_until = now_us + LEASE_US
    with db.begin() as conn:
        due = due_ids(
            j.id,
            j.status == PENDING,
            j.next_attempt_at_us <= now_us,
            order_by=j.next_attempt_at_us,
            limit=limit,
        )
        claimed = conn.execute(
            update(push_jobs)
            .where(j.id.in_(select(due.c.id)), j.status == PENDING, j.next_attempt_at_us <= now_us)
            .values(next_attempt_at_us=lease_until)
            .returning(j.id, j.attempts, j.subscription_id, j.notice_id)
        ).all()
        if not claimed:
            return []
        subs = {
            int(r.id): r
            for r in conn.execute(
                select(s.id, s.endpoint, s.p256dh, s.auth, s.locale).where(
                    s.id.in_({int(c.subscription_id) for c in claimed})
                )
            )
        }
        bodies = dict(
            conn.execute(
                select(notices.c.id, notices.c.payload).where(
                    notices.c.id.in_({int(c.notice_id) for c in claimed})
                )
            ).all()
        )
        gone = [int(c.id) for c in claimed if int(c.subscription_id) not in subs]
        if gone:  # the browser was removed meanwhile
            conn.execute(update(push_jobs).where(j.id.in_(gone)).values(status=FAILED))
    return [
        PushClaim(
            job_id=int(c.id),
            attempts=int(c.attempts),
            lease_until_us=lease_until,
            subscription_id=int(c.subscription_id),
            endpoint=subs[int(c.subscription_id)].endpoint,
            p256dh=subs[int(c.subscription_id)].p256dh,
            auth=subs[int(c.subscription_id)].auth,
            payload=bodies[c.notice_id],
            locale=subs[int(c.subscription_id)].locale,
        )
        for c in claimed
        if int(c.subscription_id) in subs
    ]


def _mine(claim: PushClaim) -> object:
    return (
        (j.id == claim.job_id)
        & (j.status == PENDING)
        & (j.next_attempt_at_us == claim.lease_until_us)
    )


def record(db: Engine, claim: PushClaim, status: int | None, policy: SendPolicy) -> str:
    """The outcome of one send, while the lease holds; what became of the job."""
    now = wall_clock_us()
    attempts = claim.attempts + 1
    with db.begin() as conn:
        if status is not None and 200 <= status < 300:
            outcome, values = SENT, dict[str, object](status=SENT)
        elif status in (404, 410):
            # RFC 8030: the subscription expired or was unsubscribed; never push to it again.
            conn.execute(delete(push_subscriptions).where(s.id == claim.subscription_id))
            outcome, values = "gone", {"status": FAILED}
        elif (status is None or status == 429 or status >= 500) and attempts < policy.max_attempts:
            retry_at = now + policy.delay_us(attempts)
            outcome, values = "retry", {"next_attempt_at_us": retry_at}
        else:
            outcome, values = FAILED, {"status": FAILED}
        conn.execute(
            update(push_jobs)
            .where(_mine(claim))  # type: ignore[arg-type]
            .values(attempts=attempts, last_status=status, **values)
        )
        if outcome == "gone":
            conn.execute(
                update(push_jobs)
                .where(j.subscription_id == claim.subscription_id, j.status == PENDING)
                .values(status=FAILED)
            )
    return outcome


async def _destination_public(endpoint: str) -> bool:
    parts = urlsplit(endpoint)
    try:
        addresses = await resolve_async(parts.hostname or "", parts.port or 443)
    except HostUnknown:
        return False
    return first_not_public(addresses) is None


class PushSender:
    """The periodic task that sends due pushes."""

    def __init__(
        self,
        db: Engine,
        key: VapidKey,
        policy: SendPolicy,
        render: Render,
        *,
        interval_s: float = 1.0,
    ) -> None:
        self.db = db
        self.key = key
        self.policy = policy
        self.render = render
        self._gate = asyncio.Semaphore(policy.concurrency)
        self._loop = PeriodicTask("push-sender", self.run, Schedule(interval_s))
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.policy.timeout_s),
            limits=httpx.Limits(max_connections=self.policy.concurrency),
            follow_redirects=False,  # a push service answers; it never sends us elsewhere
            trust_env=False,
        )
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self._client is not None:
            await self._client.aclose()

    def wake(self) -> None:
        self._loop.wake()

    async def run(self) -> float | None:
        """One round: claim, send all at once (bounded), record; how many were sent."""
        claims = await asyncio.to_thread(claim_due, self.db, now_us=wall_clock_us(), limit=BATCH)
        outcomes = await asyncio.gather(*(self._send_one(c) for c in claims))
        if len(claims) == BATCH:
            return 0.0  # more are due: go again at once
        del outcomes
        return None

    async def _send_one(self, claim: PushClaim) -> str:
        async with self._gate:
            status = await self._post(claim)
        return await asyncio.to_thread(record, self.db, claim, status, self.policy)

    async def _post(self, claim: PushClaim) -> int | None:
        assert self._client is not None, "start() first"
        if not self.policy.allow_private and not await _destination_public(claim.endpoint):
            return 400  # not retried: the endpoint points inside (or nowhere)
        info = {"endpoint": claim.endpoint, "keys": {"p256dh": claim.p256dh, "auth": claim.auth}}
        data = self.render(claim.payload, claim.locale)
        body = _web_pusher()(info).encode(data, "aes128gcm")["body"]
        headers = {
            "Authorization": self.key.authorization(claim.endpoint, wall_clock_us() // 1_000_000),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(PUSH_TTL_S),
            "Urgency": "normal",
        }
        try:
            answer = await self._client.post(claim.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.info("push to subscription %d: %s", claim.subscription_id, type(exc).__name__)
            return None
        return answer.status_code


@functools.cache
def _web_pusher() -> Any:
    """pywebpush's ``WebPusher``, imported at the first notice sent: the package brings
    aiohttp and requests (~0.18 s of CPU), which every process start paid, sending or not."""
    from pywebpush import WebPusher  # type: ignore[import-untyped]

    return WebPusher

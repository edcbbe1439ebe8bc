"""The webhooks of one process, built from settings: what the app starts and stops, the
observers it gives to gifting and to the hub, and the endpoint cache they read."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import httpx
from sqlalchemy import Connection, Engine

from giftwave.clock import now_us
from giftwave.config import Settings
from giftwave.economy.gifting import GiftSent
from giftwave.economy.paid_messages import PaidMessageSent
from giftwave.economy.reversals import GiftReversed
from giftwave.economy.subscription_gifts import SubsGiven
from giftwave.live.events import GoalReachedShown, RoomEvent
from giftwave.live.room import Room
from giftwave.live.thanks import Thanks
from giftwave.ttl_cache import TtlCache
from giftwave.webhooks.dispatcher import Dispatcher
from giftwave.webhooks.endpoints import Endpoint, endpoints_of
from giftwave.webhooks.events import EventType
from giftwave.webhooks.outbox import (
    PendingGauge,
    RetryPolicy,
    enqueue_subscriptions_gifted,
    enqueue_thanks_sent,
)
from giftwave.webhooks.writer import (
    GiftCommitted,
    GoalReached,
    OutboxWriter,
    PaidMessageCommitted,
    ReversalCommitted,
)

log = logging.getLogger(__name__)

# A creator's endpoints are re-read this often: an endpoint registered on another node starts
# receiving events within this long (at once on the node that registered it).
ENDPOINTS_TTL_S: Final = 5.0
MAX_FOLLOWS_UNDER_WAY: Final = 1_000


class Webhooks:
    def __init__(
        self,
        settings: Settings,
        db: Engine,
        *,
        follow: Callable[[str], Awaitable[None]] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        quiet_us = settings.live_combo_quiet_ms * 1000
        self.settings = settings
        self.db = db
        self.gauge = PendingGauge(settings.webhook_max_pending_per_endpoint)
        self._loading: dict[int, asyncio.Future[tuple[Endpoint, ...]]] = {}
        self._endpoints: TtlCache[int, tuple[Endpoint, ...]] = TtlCache(
            max_entries=100_000, ttl_s=ENDPOINTS_TTL_S
        )
        self._follow = follow
        self._following: dict[str, asyncio.Task[None]] = {}  # stream → its follow under way
        self.dispatcher = Dispatcher(
            db,
            policy=RetryPolicy(
                base_ms=settings.webhook_retry_base_ms,
                max_attempts=settings.webhook_max_attempts,
                disable_after_us=settings.webhook_disable_after_s * 1_000_000,
            ),
            gauge=self.gauge,
            timeout_s=settings.webhook_timeout_s,
            allow_private=settings.webhook_allow_private_addresses,
            combo_quiet_us=quiet_us,
            on_endpoint_disabled=self.forget,
            transport=transport,
        )
        self.writer = OutboxWriter(
            db, self.gauge, combo_quiet_us=quiet_us, on_written=self._written
        )

    def start(self) -> None:
        self.writer.start()
        self.dispatcher.start()

    async def stop(self) -> None:
        for task in list(self._following.values()):
            task.cancel()
        await asyncio.gather(*self._following.values(), return_exceptions=True)
        await self.writer.stop()  # then: what gifts queued reaches the outbox
        await self.dispatcher.stop()

    def wake(self) -> None:
        """Something was queued outside the writer (a ping, a battle): deliver it now."""
        self.dispatcher.wake()

    def forget(self, creator_id: int) -> None:
        """The creator's endpoints changed: read them again."""
        self._endpoints.drop(creator_id)

    async def active_endpoints(self, creator_id: int) -> tuple[Endpoint, ...]:
        cached = self._endpoints.get(creator_id)
        if cached is not None:
            return cached
        # One read per creator, however many gifts to them are in flight when it expires.
        loading = self._loading.get(creator_id)
        if loading is None:

            def load() -> tuple[Endpoint, ...]:
                with self.db.connect() as conn:
                    return tuple(x for x in endpoints_of(conn, creator_id) if x.active)

            loading = asyncio.ensure_future(asyncio.to_thread(load))
            self._loading[creator_id] = loading
            try:
                endpoints = await asyncio.shield(loading)
            finally:
                del self._loading[creator_id]
            self._endpoints.put(creator_id, endpoints)
            return endpoints
        return await asyncio.shield(loading)

    async def _wanting(self, creator_id: int, kind: EventType, what: str) -> tuple[Endpoint, ...]:
        """The creator's active endpoints that want ``kind``; none when they cannot be read:
        ``what`` (a reversal, a paid message, a purchase) is committed and stays so, and its
        webhooks are lost, logged."""
        try:
            endpoints = await self.active_endpoints(creator_id)
        except Exception:
            log.exception("webhooks of %s: endpoints unreadable", what)
            return ()
        return tuple(x for x in endpoints if x.wants(kind))

    async def gift_committed(self, sent: GiftSent, sender_handle: str, comboable: bool) -> None:
        """The gift observer: a committed gift's deliveries are queued before it is acked."""
        try:
            endpoints = await self.active_endpoints(sent.creator_id)
        except Exception:  # the gift is committed and stays so; its webhooks are lost
            log.exception(
                "webhooks of gift %s: the creator's endpoints are unreadable", sent.send_id
            )
            return
        if not endpoints:
            return  # the usual case, and free: no query, no write
        at = now_us()
        if any(x.wants(EventType.GOAL_REACHED) for x in endpoints):
            self._keep_following(sent.stream_id)
        if any(x.wants(EventType.GIFT) or x.wants(EventType.COMBO_END) for x in endpoints):
            await self.writer.write(GiftCommitted(sent, sender_handle, comboable, at, endpoints))

    async def gift_reversed(self, done: GiftReversed) -> None:
        """The reversal observer: its deliveries are queued before the operator is answered
        (again on a replay, which queues nothing new: the event id names the reversal)."""
        what = f"reversal {done.send_id}"
        wanting = await self._wanting(done.gift.creator_id, EventType.GIFT_REVERSED, what)
        if wanting:
            await self.writer.write(ReversalCommitted(done, wanting))

    async def paid_message(self, said: PaidMessageSent) -> None:
        """The paid message observer: queued before the gift is acked (again on a retry,
        which queues nothing new: the event id names the gift's send)."""
        what = f"paid message {said.send_id}"
        wanting = await self._wanting(said.creator_id, EventType.PAID_MESSAGE, what)
        if wanting:
            await self.writer.write(PaidMessageCommitted(said, wanting))

    async def subscriptions_gifted(self, given: SubsGiven) -> None:
        """The gifted subscriptions observer: queued before the buyer is answered (again on
        a retry, which queues nothing new: the event id names the purchase)."""
        what = f"gifted subscriptions {given.gift_id}"
        if not await self._wanting(given.creator_id, EventType.SUBSCRIPTION_GIFTED, what):
            return

        def write() -> None:
            with self.db.begin() as conn:
                enqueue_subscriptions_gifted(
                    conn, given, max_pending=self.settings.webhook_max_pending_per_endpoint
                )

        await asyncio.to_thread(write)
        self.wake()

    def thanks_sent(self, conn: Connection, thanks: Thanks) -> None:
        """The thanks observer (live/thanks_service.py): ``thanks.sent`` queued in the
        transaction that stores the thank-you. Blocking, on the route's worker thread."""
        enqueue_thanks_sent(
            conn, thanks, max_pending=self.settings.webhook_max_pending_per_endpoint
        )

    def _keep_following(self, stream_id: str) -> None:
        """This node must hold the room to see its goal reached. In the background: bringing a
        room up (its history from Redis) must not delay the gift's answer."""
        if self._follow is None or stream_id in self._following:
            return
        if len(self._following) >= MAX_FOLLOWS_UNDER_WAY:
            log.warning("too many rooms being followed at once; %s is not", stream_id)
            return

        async def follow() -> None:
            assert self._follow is not None
            try:
                await self._follow(stream_id)
            except Exception:
                log.exception("could not follow room %s for its goal", stream_id)
            finally:
                self._following.pop(stream_id, None)

        self._following[stream_id] = asyncio.create_task(follow(), name=f"follow-{stream_id}")

    def room_events(self, room: Room, events: list[RoomEvent]) -> None:
        """The hub observer: a goal reached in a room this node holds. Every node holding the
        room sees it; the outbox keeps one delivery per endpoint."""
        for event in events:
            if not isinstance(event, GoalReachedShown):
                continue
            goal_id = event.goal_id
            same_goal = room.goal is not None and room.goal.id == goal_id
            progress = room.goal_progress if same_goal else None
            self.writer.post(GoalReached(goal_id, progress, now_us()))

    def _written(self, combo_due_us: int | None) -> None:
        self.dispatcher.wake()
        if combo_due_us is not None:
            self.dispatcher.wake(combo_due_us)

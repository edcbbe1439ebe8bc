"""What a creator does with their webhook endpoints, one call each: the permission (creators
only), then the unit of work (one transaction, on a worker thread) around the rules of
``endpoints.py`` and ``outbox.py``. Routes parse, call one of these and shape the answer."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from giftwave.clock import now_us
from giftwave.db.tables import webhook_deliveries
from giftwave.errors import Code, Conflict
from giftwave.identity.permissions import require_creator
from giftwave.identity.users import User
from giftwave.webhooks.destinations import check_url_resolved
from giftwave.webhooks.endpoints import (
    Endpoint,
    delete_endpoint,
    endpoints_of,
    get_endpoint,
    parse_events,
    register,
)
from giftwave.webhooks.events import ping_event
from giftwave.webhooks.outbox import Delivery, enqueue, recent_deliveries
from giftwave.webhooks.service import Webhooks

DOING = "register webhooks"


async def create(hooks: Webhooks, user: User, url: str, events: list[str]) -> Endpoint:
    """A new endpoint (its secret shown in this answer only)."""
    require_creator(user, DOING)
    parse_events(events)  # what is cheap to refuse is refused before any lookup
    settings = hooks.settings
    # The name is resolved here, before the transaction: a lookup may take seconds.
    resolved = await check_url_resolved(
        url,
        allow_private=settings.webhook_allow_private_addresses,
        timeout_s=settings.webhook_timeout_s,
    )

    def work() -> Endpoint:
        with hooks.db.begin() as conn:
            return register(
                conn,
                user.id,
                resolved,
                events,
                allow_private=settings.webhook_allow_private_addresses,
            )

    endpoint = await asyncio.to_thread(work)
    hooks.forget(user.id)
    return endpoint


async def listed(hooks: Webhooks, user: User) -> list[Endpoint]:
    require_creator(user, DOING)

    def work() -> list[Endpoint]:
        with hooks.db.connect() as conn:
            return endpoints_of(conn, user.id)

    return await asyncio.to_thread(work)


async def delete(hooks: Webhooks, user: User, endpoint_id: int) -> None:
    """The endpoint and its deliveries, pending ones included."""
    require_creator(user, DOING)

    def work() -> None:
        with hooks.db.begin() as conn:
            delete_endpoint(conn, user.id, endpoint_id)

    await asyncio.to_thread(work)
    hooks.forget(user.id)


async def send_ping(hooks: Webhooks, user: User, endpoint_id: int) -> tuple[int, str]:
    """A ``ping`` queued to the endpoint: (its delivery id, its event id)."""
    require_creator(user, DOING)

    def work() -> tuple[int, str]:
        with hooks.db.begin() as conn:
            endpoint = get_endpoint(conn, user.id, endpoint_id)
            if not endpoint.active:
                raise Conflict(Code.WEBHOOK_DISABLED, "this endpoint was disabled; register again")
            event = ping_event(endpoint.id, user.id, now_us())
            if not enqueue(conn, event, [endpoint], hooks.gauge):
                raise Conflict(Code.WEBHOOK_BACKLOG_FULL, "too many deliveries are pending")
            delivery_id = conn.execute(
                select(webhook_deliveries.c.id).where(
                    webhook_deliveries.c.endpoint_id == endpoint.id,
                    webhook_deliveries.c.event_id == event.event_id,
                )
            ).scalar_one()
            return int(delivery_id), event.event_id

    sent = await asyncio.to_thread(work)
    hooks.wake()
    return sent


async def deliveries(
    hooks: Webhooks, user: User, endpoint_id: int, *, limit: int, before: int | None
) -> list[Delivery]:
    """The endpoint's deliveries, newest first."""
    require_creator(user, DOING)

    def work() -> list[Delivery]:
        with hooks.db.connect() as conn:
            get_endpoint(conn, user.id, endpoint_id)
            return recent_deliveries(conn, endpoint_id, limit=limit, before_id=before)

    return await asyncio.to_thread(work)

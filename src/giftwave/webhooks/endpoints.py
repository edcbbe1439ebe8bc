"""A creator's webhook endpoints: register (the signing secret is shown once), list, delete.

At most ``MAX_ENDPOINTS_PER_CREATOR`` each. An endpoint subscribes to event types by name; an
unknown name is refused rather than ignored, so a typo does not silently receive nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, delete, func, insert, select

from giftwave.clock import now_us
from giftwave.db.tables import users, webhook_deliveries, webhook_endpoints
from giftwave.errors import Code, Conflict, Invalid, NotFound
from giftwave.webhooks.destinations import check_url
from giftwave.webhooks.events import SUBSCRIBABLE, EventType

MAX_ENDPOINTS_PER_CREATOR: Final = 10
SECRET_PREFIX: Final = "whsec_"


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    creator_id: int
    url: str
    secret: str = field(repr=False)  # never in a log line
    events: frozenset[EventType]
    created_at_us: int
    disabled_at_us: int | None
    failing_since_us: int | None
    dropped_events: int

    @property
    def active(self) -> bool:
        return self.disabled_at_us is None

    def wants(self, event: EventType) -> bool:
        return self.active and event in self.events


def _to_endpoint(m: Any) -> Endpoint:
    return Endpoint(
        id=int(m["id"]),
        creator_id=int(m["creator_id"]),
        url=m["url"],
        secret=m["secret"],
        events=frozenset(EventType(name) for name in m["events"].split(",") if name),
        created_at_us=int(m["created_at_us"]),
        disabled_at_us=m["disabled_at_us"],
        failing_since_us=m["failing_since_us"],
        dropped_events=int(m["dropped_events"]),
    )


def parse_events(names: Sequence[str]) -> frozenset[EventType]:
    known = {e.value for e in SUBSCRIBABLE}
    unknown = sorted({n for n in names if n not in known})
    if unknown:
        raise Invalid(
            Code.UNKNOWN_WEBHOOK_EVENT,
            f"unknown event type(s) {', '.join(map(repr, unknown))}; "
            f"the types are {', '.join(sorted(known))}",
        )
    if not names:
        raise Invalid(Code.UNKNOWN_WEBHOOK_EVENT, "subscribe to at least one event type")
    return frozenset(EventType(n) for n in names)


def register(
    conn: Connection, creator_id: int, url: str, events: Sequence[str], *, allow_private: bool
) -> Endpoint:
    """A new endpoint with a fresh secret; ``Conflict`` past the per-creator limit."""
    url = check_url(url, allow_private=allow_private)
    wanted = parse_events(events)
    # Insert, then count: on SQLite the insert takes the one write lock first; on PostgreSQL
    # holding the creator's row makes two racing registrations take turns.
    conn.execute(select(users.c.id).where(users.c.id == creator_id).with_for_update()).first()
    row = {
        "creator_id": creator_id,
        "url": url,
        "secret": SECRET_PREFIX + secrets.token_urlsafe(32),
        "events": ",".join(sorted(e.value for e in wanted)),
        "created_at_us": now_us(),
        "disabled_at_us": None,
        "failing_since_us": None,
        "dropped_events": 0,
    }
    endpoint_id = conn.execute(
        insert(webhook_endpoints).values(**row).returning(webhook_endpoints.c.id)
    ).scalar_one()
    count = conn.execute(
        select(func.count())
        .select_from(webhook_endpoints)
        .where(webhook_endpoints.c.creator_id == creator_id)
    ).scalar_one()
    if count > MAX_ENDPOINTS_PER_CREATOR:  # raising rolls the insert back
        raise Conflict(
            Code.WEBHOOK_LIMIT_REACHED,
            f"a creator has at most {MAX_ENDPOINTS_PER_CREATOR} webhook endpoints; delete one",
        )
    return _to_endpoint({"id": endpoint_id, **row})


def endpoints_of(conn: Connection, creator_id: int) -> list[Endpoint]:
    rows = conn.execute(
        select(webhook_endpoints)
        .where(webhook_endpoints.c.creator_id == creator_id)
        .order_by(webhook_endpoints.c.id)
    ).all()
    return [_to_endpoint(r._mapping) for r in rows]


def get_endpoint(conn: Connection, creator_id: int, endpoint_id: int) -> Endpoint:
    """The creator's endpoint; another creator's is "not found", like one that never was."""
    row = conn.execute(
        select(webhook_endpoints).where(
            webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.creator_id == creator_id
        )
    ).first()
    if row is None:
        raise NotFound(Code.WEBHOOK_NOT_FOUND, f"no webhook endpoint {endpoint_id}")
    return _to_endpoint(row._mapping)


def delete_endpoint(conn: Connection, creator_id: int, endpoint_id: int) -> None:
    """The endpoint and its deliveries: nothing more is sent to it, even what was pending."""
    get_endpoint(conn, creator_id, endpoint_id)
    conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id))
    conn.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id))

"""What a user chose: which creators' notices they want, their time zone and quiet hours, and
the browser push subscriptions they registered. Every change is idempotent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, delete, func, select

from giftwave.db.tables import notify_optins, notify_settings, push_subscriptions
from giftwave.db.upsert import insert_for
from giftwave.egress import is_local_host
from giftwave.errors import Code, Conflict, Invalid
from giftwave.notify.vapid import b64url_decode

MAX_SUBSCRIPTIONS_PER_USER: Final = 10
ENDPOINT_MAX_CHARS: Final = 1024
P256DH_BYTES: Final = 65  # an uncompressed P-256 point
AUTH_BYTES: Final = 16
DEFAULT_LOCALE: Final = "en"
LOCALE_MAX_CHARS: Final = 8


@dataclass(frozen=True, slots=True)
class QuietHours:
    time_zone: str
    from_h: int  # quiet from this local hour …
    to_h: int  # … until this one (from == to: never quiet)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    user_id: int
    endpoint: str
    p256dh: str
    auth: str
    locale: str = DEFAULT_LOCALE  # the language its notices are written in


def opt_in(conn: Connection, user_id: int, creator_id: int, at_us: int) -> bool:
    """Whether this call made the opt-in (False: it was there)."""
    if user_id == creator_id:
        raise Invalid(Code.NOTIFY_SELF, "you are not notified of your own streams")
    made = conn.execute(
        insert_for(conn, notify_optins)
        .values(user_id=user_id, creator_id=creator_id, created_at_us=at_us)
        .on_conflict_do_nothing()
    ).rowcount
    return bool(made)


def is_opted_in(conn: Connection, user_id: int, creator_id: int) -> bool:
    o = notify_optins.c
    found = conn.execute(select(o.user_id).where(o.user_id == user_id, o.creator_id == creator_id))
    return found.first() is not None


def opt_out(conn: Connection, user_id: int, creator_id: int) -> bool:
    return bool(
        conn.execute(
            delete(notify_optins).where(
                notify_optins.c.user_id == user_id, notify_optins.c.creator_id == creator_id
            )
        ).rowcount
    )


def check_time_zone(name: str) -> str:
    """An IANA zone name (``Europe/Madrid``), or ``Invalid``."""
    if not 0 < len(name) <= 64 or not name.isascii() or name.startswith(("/", ".")) or ".." in name:
        raise Invalid(Code.INVALID_TIME_ZONE, "a time zone is an IANA name like Europe/Madrid")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(Code.INVALID_TIME_ZONE, f"{name!r} is not an IANA time zone") from None
    return name


def set_quiet_hours(conn: Connection, user_id: int, quiet: QuietHours, at_us: int) -> QuietHours:
    check_time_zone(quiet.time_zone)
    if not (0 <= quiet.from_h <= 23 and 0 <= quiet.to_h <= 23):
        raise Invalid(Code.INVALID_RANGE, "quiet hours are whole hours 0-23")
    values = {
        "time_zone": quiet.time_zone,
        "quiet_from_h": quiet.from_h,
        "quiet_to_h": quiet.to_h,
        "updated_at_us": at_us,
    }
    statement = insert_for(conn, notify_settings).values(user_id=user_id, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=["user_id"], set_=values))
    return quiet


def quiet_hours_of(conn: Connection, user_ids: list[int]) -> dict[int, QuietHours]:
    s = notify_settings.c
    rows = conn.execute(
        select(s.user_id, s.time_zone, s.quiet_from_h, s.quiet_to_h).where(s.user_id.in_(user_ids))
    )
    return {int(r[0]): QuietHours(str(r[1]), int(r[2]), int(r[3])) for r in rows}


def check_endpoint(endpoint: str, *, allow_private: bool) -> str:
    """A push endpoint this server may POST to: https (http only when private addresses are
    allowed, for development), bounded, no credentials, and a public host unless allowed. The
    name's addresses are checked again before each send (notify/sender.py)."""
    if not 0 < len(endpoint) <= ENDPOINT_MAX_CHARS or not endpoint.isascii() or " " in endpoint:
        raise Invalid(Code.INVALID_PUSH_SUBSCRIPTION, "an endpoint is 1-1024 ASCII characters")
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise Invalid(Code.INVALID_PUSH_SUBSCRIPTION, "the endpoint is not a URL") from None
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed_schemes or not parts.hostname:
        raise Invalid(Code.INVALID_PUSH_SUBSCRIPTION, "a push endpoint is an https:// URL")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise Invalid(Code.INVALID_PUSH_SUBSCRIPTION, "an endpoint has no user, password or #")
    if not allow_private and is_local_host(parts.hostname):
        raise Invalid(Code.PUSH_ENDPOINT_NOT_ALLOWED, f"{parts.hostname} is not a public address")
    return endpoint


def _check_key(text: str, size: int, name: str) -> str:
    try:
        raw = b64url_decode(text) if len(text) <= 128 and text.isascii() else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise Invalid(Code.INVALID_PUSH_SUBSCRIPTION, f"keys.{name} is {size} bytes in base64url")
    return text


def add_subscription(
    conn: Connection,
    user_id: int,
    *,
    endpoint: str,
    p256dh: str,
    auth: str,
    allow_private: bool,
    at_us: int,
    locale: str = DEFAULT_LOCALE,
) -> Subscription:
    """The browser's subscription, registered (again: updated, the same endpoint), with the
    language its notices are to be written in: the page's when it subscribed (the web layer
    picks it and knows the languages; an unknown one is written in English)."""
    check_endpoint(endpoint, allow_private=allow_private)
    _check_key(p256dh, P256DH_BYTES, "p256dh")
    _check_key(auth, AUTH_BYTES, "auth")
    if not (0 < len(locale) <= LOCALE_MAX_CHARS and locale.isascii() and locale.isalpha()):
        raise Invalid(Code.INVALID_REQUEST, "a locale is a language code such as 'es'")
    p = push_subscriptions.c
    existing = conn.execute(select(p.id, p.user_id).where(p.endpoint == endpoint)).first()
    if existing is not None:
        # A browser's endpoint is one user's at a time: the newest login on that browser.
        conn.execute(
            push_subscriptions.update()
            .where(p.id == existing.id)
            .values(user_id=user_id, p256dh=p256dh, auth=auth, locale=locale)
        )
        return Subscription(int(existing.id), user_id, endpoint, p256dh, auth, locale)
    held = conn.execute(select(func.count()).where(p.user_id == user_id)).scalar_one()
    if held >= MAX_SUBSCRIPTIONS_PER_USER:
        raise Conflict(
            Code.TOO_MANY_PUSH_SUBSCRIPTIONS,
            f"at most {MAX_SUBSCRIPTIONS_PER_USER} browsers per user; remove one first",
        )
    new_id = conn.execute(
        push_subscriptions.insert()
        .values(
            user_id=user_id,
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            locale=locale,
            created_at_us=at_us,
        )
        .returning(p.id)
    ).scalar_one()
    return Subscription(int(new_id), user_id, endpoint, p256dh, auth, locale)


def remove_subscription(conn: Connection, user_id: int, subscription_id: int) -> bool:
    p = push_subscriptions.c
    return bool(
        conn.execute(
            delete(push_subscriptions).where(p.id == subscription_id, p.user_id == user_id)
        ).rowcount
    )


def subscriptions_of(conn: Connection, user_ids: list[int]) -> dict[int, list[Subscription]]:
    p = push_subscriptions.c
    found: dict[int, list[Subscription]] = {}
    rows = conn.execute(select(push_subscriptions).where(p.user_id.in_(user_ids)).order_by(p.id))
    for r in rows:
        sub = Subscription(int(r.id), int(r.user_id), r.endpoint, r.p256dh, r.auth, r.locale)
        found.setdefault(sub.user_id, []).append(sub)
    return found

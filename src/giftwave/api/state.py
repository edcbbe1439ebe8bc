"""What the running app holds: every service, built once by ``create_app``'s lifespan.

A route reads them through ``services(request)``, typed, never through ``app.state``'s
untyped attributes. The database has one road: ``Services.db``.

They hang on the app object itself (``SERVICES_ATTR``), not on ``app.state``: every request
reads them several times, and Starlette's ``State`` lookup costs about a microsecond a read
(four reads a gift: the gift route's share, docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

if TYPE_CHECKING:  # the routers below import this module for ``services``
    from sqlalchemy import Engine

    from giftwave.api.admin import LedgerChecks
    from giftwave.api.analytics import Freshness
    from giftwave.api.auth import AuthCache
    from giftwave.clips.service import Clips
    from giftwave.config import Settings
    from giftwave.economy.services import Economy
    from giftwave.followers import Followers
    from giftwave.ledger.engine import PostingEngine
    from giftwave.live.ban_gate import BanGate
    from giftwave.live.battle_referee import Referee
    from giftwave.notify.service import Notifications
    from giftwave.ratelimit import RateLimiter, UserLimit
    from giftwave.realtime.broker import Broker
    from giftwave.realtime.hub import Hub
    from giftwave.sharing.service import Sharing
    from giftwave.social.fan_clubs import FanClubs
    from giftwave.social.level_service import Levels
    from giftwave.trending.service import Trending
    from giftwave.webhooks.service import Webhooks


@dataclass(frozen=True, slots=True)
class Services:
    """Every service a route may use; one instance per running app."""

    settings: Settings
    db: Engine
    engine: PostingEngine
    economy: Economy
    broker: Broker
    hub: Hub
    referee: Referee
    auth_cache: AuthCache
    ban_gate: BanGate
    rate_limiter: RateLimiter
    follow_limiter: UserLimit
    sharing: Sharing
    trending: Trending
    clips: Clips
    webhooks: Webhooks
    ledger_checks: LedgerChecks
    analytics: Freshness
    levels: Levels
    clubs: FanClubs
    notifications: Notifications
    followers: Followers | None  # the followers' child process (None: not on this node)


SERVICES_ATTR: Final = "giftwave_services"


def install(app: Starlette, built: Services) -> None:
    """The services a started app serves with (its lifespan calls this once)."""
    setattr(app, SERVICES_ATTR, built)


def app_services(app: Starlette) -> Services:
    """The services of a started app (an ``AttributeError`` before its lifespan ran)."""
    found: Services = getattr(app, SERVICES_ATTR)
    return found


def services(conn: HTTPConnection) -> Services:
    """The services of the app serving a request or a socket."""
    found: Services = getattr(conn.scope["app"], SERVICES_ATTR)
    return found


def public_base(conn: HTTPConnection) -> str:
    """This site's address as people reach it (GIFTWAVE_PUBLIC_URL, else the request's), for
    links that leave the page: share links, the plain stream link."""
    # The setting comes without a trailing slash (config.py).
    return services(conn).settings.public_url or str(conn.base_url).rstrip("/")


def services_if_started(app: Starlette) -> Services | None:
    """The services, or None while the lifespan has not built them (a fast lane's check)."""
    found: Services | None = getattr(app, SERVICES_ATTR, None)
    return found

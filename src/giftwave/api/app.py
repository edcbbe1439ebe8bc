"""The FastAPI application: wiring only; the rules live in the domain packages."""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, Final, cast

import httpx
import msgspec
from fastapi import FastAPI, Request, Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import HTTPExceptionHandler, Receive, Scope, Send

from giftwave import __version__
from giftwave.analytics.rollup import Rollup
from giftwave.analytics.viewers import ViewerSampler
from giftwave.api import (
    admin,
    admin_risk,
    analytics,
    api_docs,
    battles,
    clips,
    clubs,
    creators,
    follows,
    identity,
    ledger,
    levels,
    live,
    metrics_endpoint,
    moderation,
    notify,
    overlays,
    paid_messages,
    payees,
    shares,
    shop,
    spending,
    streams,
    subscriptions,
    thanks,
    trending,
    webhooks,
)
from giftwave.api.auth import AuthCache
from giftwave.api.body_limit import BodyLimit, RouteLimit
from giftwave.api.clip_upload import upload_body_max_bytes
from giftwave.api.drain import SAFE_METHODS, Drain, refuse_draining
from giftwave.api.host_check import IN_PROCESS_HOST, UNCHECKED_PATHS, AllowedHosts
from giftwave.api.host_check import refuse as refuse_host
from giftwave.api.live import paid_message_gate
from giftwave.api.problems import install_problem_handlers
from giftwave.api.readiness import Parts, Readiness
from giftwave.api.request_observer import (
    GIFT_TEMPLATE,
    LANE_KEY,
    SHARE_TEMPLATE,
    ObserveRequests,
)
from giftwave.api.room_sockets import KeepServerSend
from giftwave.api.security_headers import COMMON_HEADERS, SecurityHeaders
from giftwave.api.state import Services, install
from giftwave.clips.service import Clips
from giftwave.config import ConfigError, Settings
from giftwave.db.engine import check_schema, make_engine
from giftwave.db.urls import DatabaseUrl, parse_database_url
from giftwave.economy.catalog import current_gifts
from giftwave.economy.gifting import GiftGate, GiftObserver, GiftSent
from giftwave.economy.paid_messages import PaidMessageObserver, PaidMessageSent
from giftwave.economy.reversals import GiftReversed, ReversalObserver
from giftwave.economy.risk_follower import RiskEngine
from giftwave.economy.services import Economy
from giftwave.economy.spending_reminders import open_reminder_state
from giftwave.economy.subscription_gifts import SubsGiven
from giftwave.errors import Code
from giftwave.followers import Followers
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.store import BatchStore
from giftwave.ledger.stores import open_store
from giftwave.ledger.writer_process import ProcessStore
from giftwave.live.ban_gate import BanGate
from giftwave.live.battle_referee import Referee
from giftwave.live.events import (
    GiftCommitted,
    GiftedTo,
    GiftReversalCommitted,
    LevelReached,
    PaidMessagePosted,
    SubsGifted,
)
from giftwave.live.presence import RoomPresence
from giftwave.live.room import RoomSeed
from giftwave.live.room_seed import consistent_read, load_seed
from giftwave.metrics import multiprocess_dir
from giftwave.notify.service import Notifications
from giftwave.payments.base import PaymentProvider
from giftwave.payments.payout_base import PayoutProvider
from giftwave.payments.sandbox import WEBHOOK_PATH, SandboxProvider
from giftwave.payments.sandbox_payouts import WEBHOOK_PATH as PAYOUT_WEBHOOK_PATH
from giftwave.payments.sandbox_payouts import SandboxFee, SandboxPayoutProvider
from giftwave.ratelimit import open_rate_limiter
from giftwave.realtime.broker import Broker, open_broker
from giftwave.realtime.hub import Hub
from giftwave.realtime.notices import LevelChanged, SubscriberChanged
from giftwave.sharing.service import Sharing
from giftwave.social.fan_clubs import FanClubs
from giftwave.social.follows import follow_limiter
from giftwave.social.level_follower import LevelUp
from giftwave.social.level_service import Levels
from giftwave.social.levels import Curve
from giftwave.trending.service import Trending, config_from
from giftwave.web import push_text
from giftwave.web.pages import admin as admin_pages
from giftwave.web.pages import clips as clip_pages
from giftwave.web.pages import economy as economy_pages
from giftwave.web.pages import inbox as inbox_pages
from giftwave.web.pages import payout_sandbox as payout_sandbox_pages
from giftwave.web.pages import profiles as profile_pages
from giftwave.web.pages import reach as reach_pages
from giftwave.web.pages import share_link as share_link_pages
from giftwave.web.pages import site as site_pages
from giftwave.web.pages import spending as spending_pages
from giftwave.web.pages import studio as studio_pages
from giftwave.webhooks.outbox import (
    enqueue_battle_ended,
    enqueue_level_ups,
    enqueue_subscription_change,
)
from giftwave.webhooks.service import Webhooks

# The sandbox reaches this app in-process when no public URL is configured: the same HTTP
# request, signature and handler as over the network, without needing to know our address.
IN_PROCESS_BASE = f"http://{IN_PROCESS_HOST}"
# A gift's event reaches a node its commit and the broker's delay after the time it carries;
# a node waits this long past a combo's quiet window for such gifts before ending the combo,
# so that every node ends it with the same count.
COMBO_SETTLE_MS: Final = 1000
log = logging.getLogger(__name__)


SandboxLink = tuple[str, httpx.AsyncClient, str]


def _provider(
    settings: Settings, link: SandboxLink, stack: AsyncExitStack, db: Engine
) -> PaymentProvider:
    if settings.payment_provider == "stripe":
        from giftwave.payments.stripe_checkout import StripeProvider

        if settings.stripe_api_key is None or settings.stripe_webhook_secret is None:
            raise ConfigError(
                "GIFTWAVE_PAYMENT_PROVIDER=stripe needs GIFTWAVE_STRIPE_API_KEY and "
                "GIFTWAVE_STRIPE_WEBHOOK_SECRET"
            )
        stripe_provider = StripeProvider(
            api_key=settings.stripe_api_key.get_secret_value(),
            webhook_secret=settings.stripe_webhook_secret.get_secret_value(),
            tolerance_s=settings.webhook_tolerance_s,
            api_base=settings.stripe_api_base,
            request_timeout_s=settings.stripe_request_timeout_s,
        )
        stack.push_async_callback(stripe_provider.close)
        return stripe_provider
    secret, client, base = link
    sandbox = SandboxProvider(
        db=db,
        secret=secret,
        tolerance_s=settings.webhook_tolerance_s,
        client=client,
        webhook_url=base + WEBHOOK_PATH,
    )
    stack.push_async_callback(sandbox.close)
    return sandbox


def _sandbox_link(settings: Settings, app: FastAPI, stack: AsyncExitStack) -> SandboxLink:
    """How the sandbox providers reach this app: their secret, an HTTP client, our base URL."""
    secret = (
        settings.sandbox_webhook_secret.get_secret_value()
        if settings.sandbox_webhook_secret is not None
        else secrets.token_urlsafe(32)
    )
    if settings.public_url:
        client = httpx.AsyncClient()
        base = settings.public_url
    else:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=IN_PROCESS_BASE)
        base = IN_PROCESS_BASE
    stack.push_async_callback(client.aclose)
    return secret, client, base


def _payout_provider(
    settings: Settings, link: SandboxLink, stack: AsyncExitStack, db: Engine
) -> PayoutProvider | None:
    if settings.payout_provider == "none":
        return None
    if settings.payout_provider == "stripe":
        return _stripe_connect(settings, stack)
    secret, client, base = link
    provider = SandboxPayoutProvider(
        db=db,
        secret=secret,
        tolerance_s=settings.webhook_tolerance_s,
        client=client,
        webhook_url=base + PAYOUT_WEBHOOK_PATH,
        fee=SandboxFee(settings.payout_sandbox_fee_fixed_minor, settings.payout_sandbox_fee_bps),
    )
    stack.push_async_callback(provider.close)
    return provider


def _stripe_connect(settings: Settings, stack: AsyncExitStack) -> PayoutProvider:
    from giftwave.payments.stripe_connect import StripeConnectProvider

    if settings.stripe_api_key is None or settings.stripe_connect_webhook_secret is None:
        raise ConfigError(
            "GIFTWAVE_PAYOUT_PROVIDER=stripe needs GIFTWAVE_STRIPE_API_KEY and "
            "GIFTWAVE_STRIPE_CONNECT_WEBHOOK_SECRET"
        )
    signing = [settings.stripe_connect_webhook_secret]
    if settings.stripe_connect_transfers_webhook_secret is not None:
        signing.append(settings.stripe_connect_transfers_webhook_secret)
    provider = StripeConnectProvider(
        api_key=settings.stripe_api_key.get_secret_value(),
        webhook_secrets=tuple(s.get_secret_value() for s in signing),
        tolerance_s=settings.webhook_tolerance_s,
        api_base=settings.stripe_api_base,
        request_timeout_s=settings.stripe_request_timeout_s,
        platform_country=settings.stripe_platform_country,
    )
    stack.push_async_callback(provider.close)
    return provider


def _start_connect_fees(settings: Settings, economy: Economy, stack: AsyncExitStack) -> None:
    """Stripe Connect's bills to the platform, taken into the ledger (economy/provider_fees.py)."""
    from giftwave.economy.provider_fees import ProviderFees
    from giftwave.payments.stripe_records import StripeConnectFees

    assert settings.stripe_api_key is not None, "checked with the payout provider"
    source = StripeConnectFees(
        api_key=settings.stripe_api_key.get_secret_value(), api_base=settings.stripe_api_base
    )
    stack.push_async_callback(source.close)
    fees = ProviderFees(
        economy.db,
        economy.engine,
        economy.wallets,
        source,
        interval_s=settings.stripe_fee_import_interval_s,
        lookback_days=settings.stripe_fee_import_lookback_days,
    )
    fees.start()
    stack.push_async_callback(fees.stop)


def _forget_creator(economy: Economy, user_id: int | None) -> None:
    """A user changed on some node (None: perhaps anyone): the gifting's cached creators too,
    so a blocked creator stops receiving gifts at once."""
    if user_id is None:
        economy.gifting.forget_all_users()
    else:
        economy.gifting.forget_user(user_id)


async def _broadcast_gift(broker: Broker, sent: GiftSent, handle: str, comboable: bool) -> None:
    """A committed gift, to every node's copy of the room (bill first, then broadcast); again
    when its sender retries, since the process that committed it may have died before this.
    The event is the same every time: rooms count it once, at the time it was recorded."""
    news = GiftCommitted(
        send_id=sent.send_id,
        sender_id=sent.sender_id,
        sender=handle,
        gift_id=sent.gift_id,
        count=sent.count,
        coins=sent.coins,
        diamonds=sent.diamonds,
        comboable=comboable,
        at_us=sent.created_at_us,
    )
    try:
        await broker.publish(sent.stream_id, news)  # kept and sent again if the broker is away
    except Exception:  # the gift is committed and stays so; the room misses one animation
        log.exception("could not broadcast gift %s", sent.send_id)


async def _broadcast_reversal(broker: Broker, done: GiftReversed) -> None:
    """A committed reversal, to every node's copy of the gift's room; again on a replay (the
    process that committed it may have died before this). Rooms take it once."""
    gift = done.gift
    news = GiftReversalCommitted(
        send_id=done.send_id,
        sender_id=gift.sender_id,
        gift_id=gift.gift_id,
        count=gift.count,
        coins=gift.coins,
        diamonds=gift.diamonds,
        at_us=gift.created_at_us,  # the gift's time: its goal, combo and battle
    )
    try:
        await broker.publish(gift.stream_id, news)  # kept and sent again if the broker is away
    except Exception:  # committed; the room shows the gift until it is rebuilt or replayed
        log.exception("could not broadcast the reversal of %s", done.send_id)


async def _unscore_battle(referee: Referee, done: GiftReversed) -> None:
    """A reversed gift's points out of the battle it scored in, live or stored."""
    gift = done.gift
    try:
        await referee.unscore(gift.stream_id, gift.coins, gift.created_at_us, done.send_id)
    except Exception:  # committed; a replay of the reversal tries again
        log.exception("could not take reversed gift %s out of its battle", done.send_id)


async def _score_battle(referee: Referee, sent: GiftSent, _handle: str, _combo: bool) -> None:
    """A committed gift scores for its stream's side when the stream is in a battle."""
    try:
        await referee.score(sent.stream_id, sent.coins, sent.created_at_us, sent.send_id)
    except Exception:  # the gift is committed; the battle's result is read from the database
        log.exception("could not score gift %s in a battle", sent.send_id)


async def _seed_room(db: Engine, stream_id: str) -> RoomSeed:
    """A room this process starts following, or must rebuild: as the database has it."""

    def load() -> RoomSeed:
        with consistent_read(db) as conn:
            combo_gifts = frozenset(g.gift_id for g in current_gifts(conn) if g.combo)
            return load_seed(conn, stream_id, combo_gifts)

    return await asyncio.to_thread(load)


# How every `giftwave serve` runs uvicorn. No per-message deflate: a room frame is encoded once
# and the same bytes go to every viewer; compressing it again for each socket would cost more
# CPU than everything else in the fan-out (frames are small, loopback and LANs are not slow).
UVICORN_OPTIONS: Final[dict[str, Any]] = {
    "loop": "uvloop",
    "http": "httptools",
    "ws_per_message_deflate": False,
    "log_level": "info",
    # An idle keep-alive connection stays open longer than a proxy's or client's own idle
    # timeout (HAProxy's, nginx's and most load balancers' are 60 s or less), so the side that
    # reuses a connection is the side that closes it: with uvicorn's default (5 s) a request
    # sent as the server closed the connection fails (a proxy's 502, a client's read error).
    "timeout_keep_alive": 75,
}


def _own_worker_threads() -> Callable[[], Awaitable[None]]:
    """This app's own pool for ``asyncio.to_thread``, joined before the database is disposed.

    A task cancelled at shutdown stops waiting for its worker-thread call, not the call: a
    database read could otherwise open a connection after ``dispose`` and leave it open."""
    loop = asyncio.get_running_loop()
    threads = ThreadPoolExecutor(thread_name_prefix="giftwave")
    loop.set_default_executor(threads)

    async def join() -> None:
        threads.shutdown(wait=True)  # database calls only: they finish on their own
        loop.set_default_executor(ThreadPoolExecutor())  # the loop may serve another app

    return join


class Giftwave(FastAPI):
    """The app, with a fast lane before the framework for the requests that come by thousands.

    Routing and middleware alone cost about 150 us a request here (docs/benchmarks.md): more
    than a share-link redirect's own work, and a large part of a gift's. So two paths are
    answered before the router sees them: a gift (``POST /v1/streams/{id}/gifts``), by its
    handler with the app's own error handlers; and a share link (``GET /s/{code}``) when all it
    needs is in memory, declining otherwise, having sent nothing. Every other request, and a
    declined one, takes the framework's path. Both routes stay in the route table, for the
    documentation and for the 405 a wrong method gets."""

    # Set by create_app; None (an app built otherwise) checks no Host.
    allowed_hosts: AllowedHosts | None = None
    # Set by create_app; while draining, no new request that may move value (api/drain.py).
    drain: Drain | None = None
    # Request ids and HTTP metrics around everything below, fast lanes included (set by
    # create_app; None when GIFTWAVE_OBSERVABILITY is off).
    observer: ObserveRequests | None = None
    # Every request body held to its route's byte limit, fast lanes included: _serve inside
    # (set by create_app; None, an app built otherwise: no limit but the routes' own).
    body_limit: BodyLimit | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.observer is not None and scope["type"] != "lifespan":
            await self.observer(scope, receive, send)  # which calls body_limit, then _serve
        elif self.body_limit is not None:
            await self.body_limit(scope, receive, send)
        else:
            await self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan" and not self._host_allowed(scope):
            await refuse_host(scope, receive, send)  # before any lane: nothing is built from it
            return
        if self.drain is not None and self.drain.draining and _may_write(scope):
            await refuse_draining(scope, receive, send)  # before the lanes: gifts included
            return
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith("/s/"):
                scope[LANE_KEY] = SHARE_TEMPLATE
                if await share_link_pages.redirect_in_memory(self, scope, send):
                    return
            if scope["method"] == "POST" and (stream_id := streams.gift_path(path)) is not None:
                scope["path_params"] = {"stream_id": stream_id}
                scope[LANE_KEY] = GIFT_TEMPLATE
                await self._by_hand(streams.send_gift_by_hand, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _host_allowed(self, scope: Scope) -> bool:
        hosts = self.allowed_hosts
        return hosts is None or hosts.allows(scope) or scope["path"] in UNCHECKED_PATHS

    async def _by_hand(
        self,
        handler: Callable[[Request], Awaitable[Response]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """A route's handler called without the router and middleware; what it raises is
        answered by the handler the app registered for it, as the framework would."""
        scope["app"] = self
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except Exception as exc:
            answer = self._exception_handler(exc)
            if answer is None:
                raise
            answered = answer(request, exc)
            response = await answered if inspect.isawaitable(answered) else answered
        response.raw_headers.extend(COMMON_HEADERS)  # no middleware here: its headers, by hand
        await response(scope, receive, send)

    def _exception_handler(self, exc: Exception) -> HTTPExceptionHandler | None:
        """The registered handler for ``exc``, looked up as Starlette does (status code of an
        HTTP exception first, then the exception's classes, nearest first)."""
        # Every handler this app registers answers HTTP requests (none is a WebSocket's).
        handlers = cast(dict[Any, HTTPExceptionHandler], self.exception_handlers)
        if isinstance(exc, StarletteHTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in handlers:
                return handlers[cls]
        return None


# Routes are matched in order, one by one: the hot ones go first (gifts, then share-link
# redirects: a click on a shared link must not walk a hundred routes first).
ROUTERS: Final = (
    streams,
    share_link_pages,  # /s/{code}: the share links people click
    shares,
    identity,
    shop,
    spending,
    creators,
    subscriptions,
    payees,
    payout_sandbox_pages,
    webhooks,
    admin,
    admin_risk,
    ledger,
    live,
    battles,
    notify,
    overlays,
    trending,
    admin_pages,
    reach_pages,
    inbox_pages,
    spending_pages,
    analytics,
    economy_pages,
    clips,
    clip_pages,
    follows,
    levels,
    moderation,
    paid_messages,
    clubs,
    thanks,
    site_pages,
    profile_pages,
    studio_pages,
    api_docs,
)
# Innermost first: Starlette wraps each middleware added around those added before it.
MIDDLEWARE: Final = (
    KeepServerSend,  # room sockets write frames straight to the transport
    SecurityHeaders,  # nosniff, referrer policy, a page's default CSP
)


def _gift_observers(parts: Services) -> tuple[GiftObserver, ...]:
    """Who hears of a committed gift, in this order: every node's room (bill first, then
    broadcast), the battle it scores in, the webhooks (after the broadcast: a room a webhook
    follows has the gift before it is seeded), trending."""
    return (
        partial(_broadcast_gift, parts.broker),
        partial(_score_battle, parts.referee),
        parts.webhooks.gift_committed,
        parts.trending.gift_committed,
    )


def _paid_message_observers(parts: Services) -> tuple[PaidMessageObserver, ...]:
    """Who hears of a committed gift's paid message, after its gift observers, in this order:
    every node's room, the webhooks."""
    return (
        partial(_broadcast_paid_message, parts.broker, parts.hub),
        parts.webhooks.paid_message,
    )


async def _broadcast_paid_message(broker: Broker, hub: Hub, said: PaidMessageSent) -> None:
    """The message, with its sender's level badge as this node knows it, to every node's copy
    of the room; again on a retry (pinned once)."""
    news = msgspec.convert(said, PaidMessagePosted, from_attributes=True)  # its fields, by name
    level = hub.level_of(said.sender_id)  # this node's cache, never a query
    if level is not None:
        news = msgspec.structs.replace(news, level=level)
    try:
        await broker.publish(said.stream_id, news)
    except Exception:  # the gift is committed and stays so; its webhook still tells
        log.exception("could not broadcast paid message %s", said.send_id)


def _reversal_observers(parts: Services) -> tuple[ReversalObserver, ...]:
    """Who hears of a committed reversal, in this order: every node's room, both battle
    rooms, the webhooks."""
    return (
        partial(_broadcast_reversal, parts.broker),
        partial(_unscore_battle, parts.referee),
        parts.webhooks.gift_reversed,
    )


def _gift_gates(parts: Services, drain: Drain) -> tuple[GiftGate, ...]:
    """What may refuse a gift before the ledger, in this order: a creator's ban, a draining
    node (SIGTERM: new gifts refused, queued ones answered)."""
    return (parts.ban_gate.check, drain.gate)


def _wire(parts: Services, drain: Drain) -> None:
    """The observers, gates and limits between the parts, each list in its stated order."""
    gifting = parts.economy.gifting
    for gate in _gift_gates(parts, drain):
        gifting.add_gate(gate)
    gifting.use_rate_limiter(parts.rate_limiter)
    for observer in _gift_observers(parts):
        gifting.add_observer(observer)
    for reversal_observer in _reversal_observers(parts):
        parts.economy.reversals.add_observer(reversal_observer)
    gifting.add_message_gate(
        paid_message_gate(
            parts.hub,
            parts.rate_limiter,
            parts.clubs.gate,
            parts.economy.subscriptions.badges,
        )
    )
    for message_observer in _paid_message_observers(parts):
        gifting.add_message_observer(message_observer)
    parts.hub.add_observer(parts.webhooks.room_events)
    # Chat, likes, moderation, gifts, shares, follows: limits per user whatever the node.
    parts.sharing.limiter.use(parts.rate_limiter)
    parts.follow_limiter.use(parts.rate_limiter)
    parts.notifications.limit.use(parts.rate_limiter)
    parts.levels.visibility_limit.use(parts.rate_limiter)
    parts.economy.subscriptions.use_rate_limiter(parts.rate_limiter)
    # A purchase of gifted subscriptions: its webhook, then the room's announcement.
    parts.economy.subscription_gifts.add_observer(parts.webhooks.subscriptions_gifted)
    parts.economy.subscription_gifts.add_observer(partial(_announce_subs_gifted, parts.broker))
    parts.clubs.changes.use(parts.rate_limiter)


async def _start_ledger(
    settings: Settings, db_url: DatabaseUrl, stack: AsyncExitStack
) -> tuple[Engine, PostingEngine]:
    """The database and the posting engine, stopped after everything that uses them."""
    db = make_engine(db_url)
    check_schema(db)
    store: BatchStore = (
        ProcessStore(db_url) if settings.ledger_writer == "process" else open_store(db_url)
    )
    engine = PostingEngine(
        store,
        batch_max_transfers=settings.ledger_batch_max_transfers,
        queue_max_submissions=settings.ledger_queue_max_submissions,
        linger_ms=settings.ledger_batch_linger_ms,
        expiry_interval_s=settings.ledger_expiry_interval_s,
    )
    stack.callback(db.dispose)
    stack.push_async_callback(_own_worker_threads())
    await engine.start()
    stack.push_async_callback(engine.stop)
    return db, engine


async def _announce_level_ups(broker: Broker, ups: Sequence[LevelUp]) -> None:
    """Level-ups this node committed: "ana reached level 12" in the room of the gift that
    crossed it, and the new badge on every node (social/level_badges.py)."""
    for up in ups:
        await broker.publish(
            up.stream_id, LevelReached(user_id=up.user_id, handle=up.handle, level=up.level)
        )
        await broker.notify(LevelChanged(user_id=up.user_id, level=up.level))


async def _announce_subs_gifted(broker: Broker, given: SubsGiven) -> None:
    """ "ana gifted 5 subs!" in the room they were bought in, each recipient named; every
    node reads the recipients' badges again."""
    for r in given.recipients:
        await broker.notify(SubscriberChanged(creator_id=given.creator_id, user_id=r.user_id))
    await broker.publish(
        given.stream_id,
        SubsGifted(
            gift_id=given.gift_id,
            buyer_id=given.buyer_id,
            buyer=given.buyer,
            count=given.count,
            recipients=[GiftedTo(r.user_id, r.handle, r.months) for r in given.recipients],
            at_us=given.created_at_us,
        ),
    )


def _hub(settings: Settings, db: Engine, broker: Broker, levels: Levels) -> Hub:
    return Hub(
        tick_ms=settings.live_tick_ms,
        combo_quiet_ms=settings.live_combo_quiet_ms,
        combo_settle_ms=COMBO_SETTLE_MS,
        battle_result_ms=settings.battle_result_shown_s * 1000,
        coalesce=settings.live_fanout == "tick",
        ring_max_bytes=settings.live_ring_max_bytes,
        broker=broker,
        seed=partial(_seed_room, db),
        levels=levels.badges.get,
    )


async def _start_services(
    settings: Settings, db_url: DatabaseUrl, app: FastAPI, stack: AsyncExitStack
) -> Services:
    """Every service, started in dependency order; ``stack`` stops them in reverse."""
    db, engine = await _start_ledger(settings, db_url, stack)
    # One secret for both sandbox providers: they are one "provider" to an operator.
    link = _sandbox_link(settings, app, stack)
    economy = Economy.build(
        settings,
        db,
        engine,
        _provider(settings, link, stack, db),
        _payout_provider(settings, link, stack, db),
    )
    if economy.payout_transfers is not None:
        economy.payout_transfers.start()  # the sweeper of processing payouts
        stack.push_async_callback(economy.payout_transfers.stop)
    if settings.payout_provider == "stripe":
        _start_connect_fees(settings, economy, stack)
    economy.seed_defaults()
    # Creators' hundredths of a diamond become whole diamonds off the gift path.
    economy.fractions.start()
    stack.push_async_callback(economy.fractions.stop)
    # Every node renews the subscriptions due; the ledger charges each period once.
    economy.subscriptions.start()
    stack.push_async_callback(economy.subscriptions.stop)
    # A started, renewed or lapsed subscription's webhook, in the transaction that moves it.
    economy.subscriptions.add_observer(enqueue_subscription_change)
    economy.subscription_gifts.start()  # purchases a crash left with periods unapplied
    stack.push_async_callback(economy.subscription_gifts.stop)
    broker = open_broker(settings.broker_url)
    # Gifter levels follow the ledger off the gift path; a level-up's webhook is written in
    # the transaction that records it (social/level_follower.py).
    inline = settings.followers == "inline"  # else a child process, or another node
    levels = Levels(
        db,
        Curve.configured(settings.level_thresholds_coins),
        observers=(enqueue_level_ups,),
        follow=inline,
    )
    levels.add_announcer(partial(_announce_level_ups, broker))
    hub = _hub(settings, db, broker, levels)
    ban_gate = BanGate(db)
    auth_cache = AuthCache(db, forget_elsewhere=(partial(_forget_creator, economy),))
    # Bans, sessions, users and keys are cached per node; a change anywhere drops the cached
    # answers everywhere through the broker's notices (live/ban_gate.py, api/auth.py), heard
    # from the broker's start on.
    clubs = FanClubs(db, hub.watchers, follow_gifts=inline)
    broker.on_notice(ban_gate.notice)
    broker.on_notice(auth_cache.notice)
    broker.on_notice(levels.badges.notice)
    broker.on_notice(clubs.gate.notice)
    broker.on_notice(economy.subscriptions.badges.notice)
    await broker.start(hub)
    stack.push_async_callback(broker.stop)
    rate_limiter = open_rate_limiter(settings.broker_url)
    stack.push_async_callback(rate_limiter.close)
    # Spending reminders: each viewer's streak and month in the same place (Redis: all nodes).
    reminder_state = open_reminder_state(settings.broker_url)
    stack.push_async_callback(reminder_state.close)
    economy.reminders.use(reminder_state)
    stack.push_async_callback(economy.reminders.close)
    hub.start()
    stack.push_async_callback(hub.stop)
    # Who has each room open on every node: where gifted subscriptions find recipients.
    presence = RoomPresence(db, hub.watchers)
    presence.start()
    stack.push_async_callback(presence.stop)
    economy.subscription_gifts.use_presence(presence)
    viewers = ViewerSampler(db, hub.viewer_counts)  # viewers over time, for analytics
    viewers.start()
    stack.push_async_callback(viewers.stop)
    levels.start()
    stack.push_async_callback(levels.stop)
    clubs.start()  # members' points from gifts, likes and watch time, off the gift path
    stack.push_async_callback(clubs.stop)
    if inline and settings.risk_interval_s > 0:  # fraud and abuse rules (docs/risk.md)
        risk = RiskEngine(db, economy.risk_rules, settings.risk_interval_s)
        risk.start()
        stack.callback(risk.stop)
    followers = None
    if settings.followers == "process":  # levels, club points and the rules: followers.py
        followers = Followers(settings, lock_dir=multiprocess_dir())  # one a node
        levels.add_source(followers.take_level_ups)
        followers.start()
        stack.push_async_callback(asyncio.to_thread, followers.stop)
    referee = Referee(db, broker.publish, on_result=enqueue_battle_ended)
    referee.start()
    stack.push_async_callback(referee.stop)
    outgoing = Webhooks(settings, db, follow=hub.follow)
    outgoing.start()
    stack.push_async_callback(outgoing.stop)
    sharing = Sharing(settings, db)
    sharing.start()
    stack.callback(sharing.stop)  # writes what is queued
    ranking = Trending(db, config_from(settings))
    await ranking.start()  # rebuilt from the committed gifts: a restart keeps the list
    stack.push_async_callback(ranking.stop)
    notifications = Notifications(settings, db, push_text.render)  # notices in their language
    notifications.start()
    stack.push_async_callback(notifications.stop)
    clip_service = Clips(settings, db)  # logs an error when FFmpeg is missing
    await clip_service.start()  # runs the jobs a stopped process left unfinished
    stack.push_async_callback(clip_service.stop)
    return Services(
        settings=settings,
        db=db,
        engine=engine,
        economy=economy,
        broker=broker,
        hub=hub,
        referee=referee,
        auth_cache=auth_cache,
        ban_gate=ban_gate,
        rate_limiter=rate_limiter,
        follow_limiter=follow_limiter(),
        sharing=sharing,
        trending=ranking,
        clips=clip_service,
        webhooks=outgoing,
        ledger_checks=admin.LedgerChecks(),
        analytics=analytics.Freshness(Rollup(db)),
        levels=levels,
        clubs=clubs,
        notifications=notifications,
        followers=followers,
    )


def create_app(settings: Settings) -> FastAPI:
    """The app: its guards, error answers, middleware and routes now; its services when the
    lifespan starts (built, wired, installed, then stopped in reverse)."""
    db_url = parse_database_url(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if isinstance(app, Giftwave) and app.observer is not None:
                stack.callback(app.observer.flush)  # the HTTP counts not yet written: last
            parts = await _start_services(settings, db_url, app, stack)
            _wire(parts, drain)
            install(app, parts)
            # SIGTERM drains: new gifts refused, queued ones answered, sockets told (drain.py).
            engine, hub = parts.engine, parts.hub
            stack.callback(
                drain.install(lambda: engine.queued_submissions, hub.close_all, hub.still_closing)
            )
            readiness.started(Parts(db=parts.db, engine=parts.engine, broker=parts.broker))
            stack.callback(readiness.stopped)
            yield

    # /docs and /redoc from local files, under a policy of their own (api/api_docs.py).
    app = Giftwave(
        title="giftwave",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.allowed_hosts = AllowedHosts(settings)
    drain = app.drain = Drain(settings.drain_timeout_s)
    readiness = Readiness(drain)
    app.body_limit = BodyLimit(  # served by uvicorn, which frames a body by its length
        app._serve, settings.request_body_max_bytes, _body_limits(settings), framed=True
    )
    if settings.observability:
        app.observer = ObserveRequests(app.body_limit)
    install_problem_handlers(app, missing_page=site_pages.missing_page)
    for middleware in MIDDLEWARE:
        app.add_middleware(middleware)
    _add_ops_routes(app, readiness)
    for module in ROUTERS:
        app.include_router(module.router)
    app.mount("/static", site_pages.static_files(), name="static")
    return app


def _body_limits(settings: Settings) -> tuple[RouteLimit, ...]:
    """The routes whose body limit is not GIFTWAVE_REQUEST_BODY_MAX_BYTES (api/body_limit.py):
    each next to the route it bounds."""
    return (
        RouteLimit("POST", GIFT_TEMPLATE, streams.GIFT_BODY_MAX_BYTES),
        RouteLimit("POST", shop.WEBHOOK_TEMPLATE, shop.WEBHOOK_MAX_BYTES),
        RouteLimit("POST", payees.WEBHOOK_TEMPLATE, shop.WEBHOOK_MAX_BYTES),
        RouteLimit("POST", ledger.TRANSFERS_PATH, ledger.TRANSFERS_BODY_MAX_BYTES),
        RouteLimit(
            "POST",
            clips.UPLOAD_PATH,
            upload_body_max_bytes(settings.clip_max_bytes),
            Code.CLIP_TOO_LARGE,  # as the route answered it before this limit existed
        ),
    )


def _add_ops_routes(app: FastAPI, readiness: Readiness) -> None:
    """Health, metrics and readiness, before every other route."""

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Load balancers ask often: matched before every other route."""
        return {"status": "ok", "version": __version__}

    app.include_router(metrics_endpoint.router)  # 404 unless GIFTWAVE_METRICS_TOKEN is set

    @app.get("/readyz", tags=["ops"], response_model=None)
    async def readyz() -> Response:
        """Database, schema, ledger writer, broker, not draining: 503 not_ready naming what
        failed (api/readiness.py). Checked at most once a second."""
        return await readiness.answer()


def _may_write(scope: Scope) -> bool:
    """A request that may move value: any but a safe HTTP method, and any socket (its
    commands send gifts)."""
    return scope["type"] == "websocket" or scope.get("method") not in SAFE_METHODS


def app_from_environment() -> FastAPI:
    """The app as a factory for ``uvicorn --workers``: each worker process reads the settings
    from the environment (``giftwave serve`` has validated them already) and tunes itself."""
    from giftwave.config import load_settings
    from giftwave.logs import setup_logging_from_environment
    from giftwave.tuning import tune_runtime

    setup_logging_from_environment()  # a worker process: uvicorn left logging to us
    tune_runtime()
    return create_app(load_settings())

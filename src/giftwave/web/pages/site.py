"""Pages served beside the API: HTML for people and for OBS, no JSON. Not in the OpenAPI
schema (they are not API), and a bad address gets a friendly page, not problem+json.

Pages are server-rendered shells in the visitor's language (web/i18n.py); what changes live
comes from the room's WebSocket and the JSON API, through the small modules in web/static.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from giftwave.api.auth import SESSION_COOKIE, session_user
from giftwave.api.follows import following_now, friends_watching, social_of_stream
from giftwave.api.security_headers import ANY_FRAMING, CSP, NO_FRAMING, PAGE_POLICY, page_policy
from giftwave.api.state import public_base, services
from giftwave.api.trending import ranked_streams, trending_of
from giftwave.clock import now_us
from giftwave.economy.catalog import Gift
from giftwave.economy.packages import CUSTOM_MAX_COINS, CUSTOM_MIN_COINS
from giftwave.economy.services import Economy
from giftwave.identity.users import HANDLE_RE, PASSWORD_MIN_CHARS, Role, User
from giftwave.live import stream_service
from giftwave.live.streams import Stream
from giftwave.money import EXPONENTS_NOT_TWO
from giftwave.realtime.hub import Hub
from giftwave.web.i18n import LANG_COOKIE, client_messages, negotiate
from giftwave.web.pages.spend_boot import coin_prices, countries, shop_packages, spender
from giftwave.web.script_text import SCRIPT_MESSAGES, plural_messages, problem_messages
from giftwave.web.templates import render

router = APIRouter(include_in_schema=False)

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"
LANG_COOKIE_MAX_AGE_S: Final = 365 * 24 * 3600
HOME_STREAMS: Final = 60
HOME_TRENDING: Final = 6


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is looking, in which language."""

    locale: str
    chose_locale: bool  # ?lang= now: remember it in a cookie
    user: User | None

    @property
    def is_creator(self) -> bool:
        return self.user is not None and self.user.role in (Role.CREATOR, Role.ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.role is Role.ADMIN


async def visitor(request: Request) -> Visitor:
    locale, chose = negotiate(request)
    token = request.cookies.get(SESSION_COOKIE)
    user = await session_user(request, token) if token else None
    return Visitor(locale, chose, user)


def to_login(path: str) -> RedirectResponse:
    """The log-in page, which brings the visitor back to ``path``."""
    return RedirectResponse(f"/login?next={quote(path)}", status_code=303)


async def visitor_in_role(request: Request, path: str, role: Role) -> Visitor | Response:
    """The visitor of a page for creators (admins too) or for admins only, or what to answer
    instead: the log-in page (back to ``path``) when not logged in, a 403 page without the role."""
    who = await visitor(request)
    if who.user is None:
        return to_login(path)
    if not (who.is_admin if role is Role.ADMIN else who.is_creator):
        return page(request, who, "forbidden.html", status=403)
    return who


def page(
    request: Request,
    who: Visitor,
    template: str,
    *,
    status: int = 200,
    csp: str = PAGE_POLICY,
    **context: Any,
) -> HTMLResponse:
    """A page in the visitor's language, with what its scripts need to know; ``csp``: its
    Content-Security-Policy (api/security_headers.py), when the default is not enough."""
    boot = {
        "locale": who.locale,
        "messages": client_messages(who.locale, SCRIPT_MESSAGES),
        # Digits of each currency's minor unit where not 2 (money.py): site.js money() reads it.
        "currency_exponents": EXPONENTS_NOT_TWO,
        # The API's refusals by code, and counts, in the page's language (web/script_text.py).
        "problems": problem_messages(who.locale),
        "plurals": plural_messages(who.locale),
        "user": None
        if who.user is None
        else {
            "id": who.user.id,
            "handle": who.user.handle,
            "role": who.user.role.value,
            "via": "cookie",
            **spender(_economy(request), who.user),
        },
    } | context.pop("boot", {})
    html = render(
        template,
        who.locale,
        who=who,
        path=request.url.path,
        next_url=quote(
            str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
        ),
        boot=boot,  # | tojson: web/json_in_html.py
        demo_audience=_economy(request).settings.demo_audience,
        **context,
    )
    response = HTMLResponse(
        html,
        status_code=status,
        # No other site may frame a page that can spend coins (clickjacking); the embed opens
        # this up for itself.
        headers={"Cache-Control": "no-store", CSP: csp},
    )
    if who.chose_locale:
        response.set_cookie(
            LANG_COOKIE, who.locale, max_age=LANG_COOKIE_MAX_AGE_S, samesite="lax", path="/"
        )
    return response


def not_found(request: Request, who: Visitor, what: str) -> HTMLResponse:
    return page(request, who, "not_found.html", status=404, what=what)


async def missing_page(request: Request) -> HTMLResponse:
    """Any address that is not there, asked for by a browser."""
    return not_found(request, await visitor(request), "page")


def _economy(request: Request) -> Economy:
    economy: Economy = services(request).economy
    return economy


@dataclass(frozen=True, slots=True)
class StreamCard:
    stream: Stream
    handle: str
    viewers: int
    coins: int


def _cards(hub: Hub, live: list[tuple[Stream, str]]) -> list[StreamCard]:
    cards = []
    for stream, handle in live:
        room = hub.peek(stream.id)
        cards.append(
            StreamCard(
                stream,
                handle,
                viewers=room.viewers if room else 0,
                coins=room.coins if room else 0,
            )
        )
    # Most watched first; then the most gifted; then the newest (the query's order).
    cards.sort(key=lambda c: (-c.viewers, -c.coins))
    return cards


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    """Discover: what is trending, then who is live now, most watched first."""
    who = await visitor(request)
    live = await run_in_threadpool(stream_service.live_now, _economy(request).db, HOME_STREAMS)
    hub = services(request).hub
    hot = ranked_streams(trending_of(request), hub, HOME_TRENDING)
    shared = await run_in_threadpool(
        services(request).sharing.stream_counts, [s.id for s, _ in live], now_us()
    )
    friends = (
        {}
        if who.user is None
        else await friends_watching(request, who.user, [s.id for s, _ in live])
    )
    return page(
        request,
        who,
        "home.html",
        cards=_cards(hub, live),
        trending=hot,
        share_counts=shared,
        friends_watching={s: len(ids) for s, ids in friends.items()},
        following=None if who.user is None else await following_now(request, who.user),
    )


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> Response:
    who = await visitor(request)
    return _auth_page(request, who, next, "login")


@router.get("/signup", response_class=HTMLResponse)
async def signup_page(request: Request, next: str = "/") -> Response:
    who = await visitor(request)
    return _auth_page(request, who, next, "signup")


def _auth_page(request: Request, who: Visitor, next: str, mode: str) -> Response:
    if who.user is not None:
        return RedirectResponse(_local(next), status_code=303)
    return page(
        request,
        who,
        "login.html",
        next=_local(next),
        mode=mode,
        handle_pattern=HANDLE_RE.pattern,
        password_min=PASSWORD_MIN_CHARS,
        countries=countries(who.locale),
        boot={"min_age": _economy(request).age_rule.min_age, "min_age_by_country": _ages(request)},
    )


def _ages(request: Request) -> dict[str, int]:
    return dict(_economy(request).age_rule.by_country)


# What a browser's URL parser (WHATWG) does to an address before it reads it: leading and
# trailing C0 controls and spaces go, tabs and newlines go wherever they are, and in an http(s)
# URL a backslash is a slash. "/\t/evil.example" and "/\\evil.example" are "//evil.example" to
# it: another site. So a target is judged as the browser will read it, and sent on in that form.
_C0_AND_SPACE: Final = "".join(map(chr, range(0x21)))
_TABS_AND_NEWLINES: Final = str.maketrans({"\t": None, "\n": None, "\r": None, "\\": "/"})
NEXT_MAX_CHARS: Final = 2048


def _local(url: str) -> str:
    """A redirect target on this site only (a path, never another host): else "/"."""
    target = url.strip(_C0_AND_SPACE).translate(_TABS_AND_NEWLINES)
    on_site = (
        0 < len(target) <= NEXT_MAX_CHARS
        and target.startswith("/")
        and not target.startswith("//")  # a host follows: "//evil.example/x"
        and target.isprintable()  # no other control character: nothing a browser re-reads
    )
    return target if on_site else "/"


def gifts_for_tray(economy: Economy, locale: str) -> list[dict[str, Any]]:
    catalogue: dict[str, Gift] = economy.catalog.gifts()
    now = now_us()
    on_sale = sorted(
        (g for g in catalogue.values() if g.available_at(now)),
        key=lambda g: (g.sort_order, g.gift_id),
    )
    return [
        {
            "gift_id": g.gift_id,
            "name": g.name(locale),
            "price_coins": g.price_coins,
            "combo": g.combo,
            "image": g.image,
        }
        for g in on_sale
    ]


async def _stream_page(
    request: Request, stream_id: str, template: str, framing: str = NO_FRAMING, **context: Any
) -> HTMLResponse:
    who = await visitor(request)
    economy = _economy(request)

    country = who.user.country if who.user else None
    default_currency = economy.settings.default_currency

    def load() -> (
        tuple[Stream, User | None, list[dict[str, Any]], dict[str, Any] | None, int | None] | None
    ):
        found = stream_service.with_creator(economy.db, stream_id)
        if found is None:
            return None
        prices = coin_prices(shop_packages(economy.db, country, default_currency))
        sub_price = economy.subscriptions.price(found[0].creator_id)  # None: none offered
        return *found, gifts_for_tray(economy, who.locale), prices, sub_price

    found = await run_in_threadpool(load)
    if found is None:  # in the embed's frame too, the visitor reads that it is not there
        return page(
            request, who, "not_found.html", status=404, what="stream", csp=page_policy(framing)
        )
    stream, creator, gifts, prices, sub_price = found
    return page(
        request,
        who,
        template,
        stream=stream,
        creator=creator,
        gifts=gifts,
        # Gifting subscriptions in the room (docs/economy.md, "Gifted subscriptions").
        sub_price=sub_price,
        sub_gift_max=economy.subscription_gifts.max_count,
        csp=page_policy(framing, playback_url=stream.playback_url),
        boot={
            "stream_id": stream.id,
            "creator_id": stream.creator_id,
            "live": stream.live,
            "playback_url": stream.playback_url,
            "gifts": gifts,
            # A gift at this price or more asks before it is sent; within a combo (a quiet gap
            # shorter than this) a confirmed gift is not asked about again.
            "gift_confirm_min_coins": economy.settings.gift_confirm_min_coins,
            "combo_quiet_ms": economy.settings.live_combo_quiet_ms,
            "coin_prices": prices,  # the recharge sheet's currency; coins' worth in money
        },
        **context,
    )


@router.get("/live/{stream_id}", response_class=HTMLResponse)
async def live_page(stream_id: str, request: Request, via: str = "") -> HTMLResponse:
    """The viewer page: video, gift tray, animations, chat, likes, leaderboard, goal, battle;
    ``via``: the share link it was opened through, whose sharer it credits."""
    shared = await run_in_threadpool(services(request).sharing.landing, stream_id, via, now_us())
    token = request.cookies.get(SESSION_COOKIE)
    user = await session_user(request, token) if token else None
    friends, following_creator = (
        (0, False) if user is None else await social_of_stream(request, user, stream_id)
    )
    return await _stream_page(
        request,
        stream_id,
        "live.html",
        shared=shared,
        stream_url=f"{public_base(request)}/live/{stream_id}",  # to copy without a sharer
        friends_watching=friends,
        following_creator=following_creator,
        # The cheapest highlight (docs/economy.md, "Paid highlighted messages"), for its label.
        paid_min_coins=services(request).economy.settings.paid_message_tiers[0].min_coins,
    )


@router.get("/embed/{stream_id}", response_class=HTMLResponse)
async def embed_page(stream_id: str, request: Request) -> HTMLResponse:
    """A gift panel for another site's iframe (an Owncast external action): the tray, the
    balance and the last gifts, no video. Framing is allowed here and nowhere else: inside the
    frame the browser sends no giftwave cookie, so the panel logs in itself (embed.js)."""
    return await _stream_page(request, stream_id, "embed.html", framing=ANY_FRAMING)


@router.get("/overlay/{stream_id}", response_class=HTMLResponse)
async def overlay(
    stream_id: str,
    request: Request,
    key: str = "",
    sound: bool = False,
    transparent: bool = True,
) -> HTMLResponse:
    """The OBS browser source: gift alerts, combo counters, goal and battle bars. ``key`` is
    the creator's overlay key; ``live`` for the stream follows them from stream to stream."""
    who = await visitor(request)
    economy = _economy(request)
    creator_id, stream = await run_in_threadpool(
        stream_service.overlay_target, economy.db, key, stream_id
    )
    if creator_id is None or (stream is not None and stream.creator_id != creator_id):
        return not_found(request, who, "overlay")
    if stream is None and stream_id != "live":
        return not_found(request, who, "stream")
    gifts = await run_in_threadpool(gifts_for_tray, economy, who.locale)
    return page(
        request,
        who,
        "overlay.html",
        stream=stream,
        sound=sound,
        transparent=transparent,
        boot={
            "stream_id": stream.id if stream else None,
            "follows_live": stream_id == "live",
            "gifts": gifts,
        },
    )


@router.get("/shop", response_class=HTMLResponse)
async def shop_page(request: Request, order: str | None = None) -> Response:
    """Coin packages; checkout through the configured provider; the balance when it lands."""
    who = await visitor(request)
    if who.user is None:
        return to_login("/shop")
    economy = _economy(request)
    found = await run_in_threadpool(
        shop_packages, economy.db, who.user.country, economy.settings.default_currency
    )
    prices = coin_prices(found)
    currency = prices["currency"] if prices else economy.settings.default_currency
    return page(
        request,
        who,
        "shop.html",
        custom_min=CUSTOM_MIN_COINS,
        custom_max=CUSTOM_MAX_COINS,
        boot={"order": order, "currency": currency, "coin_prices": prices},
    )

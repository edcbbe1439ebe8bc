"""The creator studio: go live and end the stream, the live dashboard, goals and battles, and
between streams the last one's top supporters with a thank-you to send them (``/studio``); the
fan club (``/studio/club``); earnings as a server-drawn chart, the CSV, and payouts
(``/studio/earnings``); the subscription price, subscribers and their figures
(``/studio/subscriptions``).

Pages like the others (web/pages/site.py): server-rendered in the visitor's language; what moves
comes from the room's WebSocket (read-only) and the JSON API, through web/static/studio*.js.
A visitor who is not logged in is sent to log in; a viewer gets a page saying the studio is
for creators. The studio's strings have their own catalog (``studio.po``, web/i18n.py).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from babel import Locale
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import economy_of
from giftwave.api.creators import days_before
from giftwave.api.identity import today
from giftwave.api.state import services
from giftwave.clock import day_of, now_us
from giftwave.economy.earnings import load_statement
from giftwave.economy.payees import NO_ACCOUNT
from giftwave.economy.services import Economy
from giftwave.errors import NotFound
from giftwave.identity.users import User
from giftwave.live import stream_service, thanks_service
from giftwave.live.battles import DEFAULT_DURATION_S, MAX_DURATION_S
from giftwave.live.chat_rules import CHAT_MAX_CHARS
from giftwave.live.streams import Stream
from giftwave.live.thanks_service import Evening
from giftwave.social import club_service
from giftwave.social.chat_settings import ChatSetting
from giftwave.social.clubs import LEVELS, LIST_MAX, NAME_MAX_CHARS, Club, Member
from giftwave.web.charts import day_chart
from giftwave.web.i18n import N_, client_messages, text_direction
from giftwave.web.pages.site import Visitor, gifts_for_tray, page, to_login, visitor

router = APIRouter(include_in_schema=False)
Econ = Annotated[Economy, Depends(economy_of)]

# What the go-live form offers; the API takes any code like pt-BR.
STREAM_LANGUAGES: Final = ("en", "es", "ar", "pt", "fr", "de", "it", "tr", "id", "hi", "ru", "ja")
BATTLE_DURATIONS_S: Final = (60, 180, 300, 600, 900, MAX_DURATION_S)
EARNINGS_DAYS: Final = (7, 30, 90, 365)
DEFAULT_EARNINGS_DAYS: Final = 30
SUBSCRIBERS_SHOWN: Final = 200

# Strings the studio's scripts show (handed to them with the page, like CLIENT_MESSAGES).
STUDIO_MESSAGES: Final = (
    N_("You are already live"),
    N_("Only creators can go live"),
    N_("This account is blocked"),
    N_("A playback address starts with http:// or https://"),
    N_("Goal saved"),
    N_("Goal cleared"),
    N_("Nobody else is live right now"),
    N_("Pick a stream to challenge"),
    N_("Challenge sent"),
    N_("{handle} challenges you to a battle of {duration}"),
    N_("Answer within {seconds} s"),
    N_("Waiting for {handle} to answer ({seconds} s)"),
    N_("That stream is not live any more"),
    N_("One of the streams is already in a battle"),
    N_("The invitation has expired"),
    N_("This battle is not waiting for an answer"),
    N_("Payout requested"),
    N_("The minimum payout is {diamonds} diamonds"),
    N_("Today's payout limit is reached"),
    N_("Not enough diamonds"),
    N_("Payouts need you to be of age"),
    N_("A reversed gift left a diamond debt: new earnings settle it first"),
    N_("Requested"),
    N_("Waiting for review"),
    N_("1 {base} = {rate} {currency}"),
    N_("Paid out"),
    N_("Rejected"),
    N_("Expired"),
    N_("Failed"),
    N_("Being paid"),
    N_("Paid"),
    N_("Returned"),
    N_("Set up your payout account first"),
    N_("Copied"),
    # Moderation (studio_moderation.js) and battle invitations (battle_alert.js).
    N_("Nobody has that handle"),
    N_("You moderate your own rooms already"),
    N_("You have as many moderators as a creator may"),
    N_("Remove"),
    N_("Unban"),
    N_("Ban"),
    N_("Spam"),
    N_("Harassment"),
    N_("Hate"),
    N_("Other"),
    N_("Battle invitation"),
    N_("Price saved"),
    # Thanking the last stream's supporters (studio_thanks.js).
    N_("Thanks sent"),
    N_("Choose at least one supporter"),
    N_("Your supporters were thanked for this stream already"),
    N_("Only this stream's top supporters can be thanked"),
    N_("Choose at most 10 supporters"),
    N_("Nobody sent a gift in your last stream."),
    N_("Slow down a little"),
)


async def _creator(request: Request) -> tuple[Visitor, User] | Response:
    """The creator looking, or what to answer instead of the studio: the login page for a
    visitor who is not logged in, a page saying the studio is for creators for a viewer."""
    who = await visitor(request)
    if who.user is None:
        return to_login(request.url.path)
    if not who.is_creator:
        return page(request, who, "studio_forbidden.html", status=403, **_becoming(request, who))
    return who, who.user


def _becoming(request: Request, who: Visitor) -> dict[str, Any]:
    """Whether this viewer may become a creator (POST /v1/me/creator), as the page says it:
    "ok", "blocked" or "too_young" (with the age)."""
    economy: Economy = services(request).economy
    assert who.user is not None
    rule = economy.age_rule
    if who.user.blocked:
        return {"becoming": "blocked"}
    if not rule.allows(who.user, today()):
        return {"becoming": "too_young", "min_age": rule.min_age_for(who.user.country)}
    return {"becoming": "ok"}


def _messages(who: Visitor) -> dict[str, str]:
    return client_messages(who.locale, STUDIO_MESSAGES)


@router.get("/studio", response_class=HTMLResponse)
async def studio(request: Request, economy: Econ) -> Response:
    """Go live; while live: the dashboard, the goal and battles."""
    found = await _creator(request)
    if isinstance(found, Response):
        return found
    who, creator = found

    curve = services(request).levels.curve

    def load() -> tuple[
        Stream | None, str, list[dict[str, Any]], list[tuple[int, int]], Evening | None
    ]:
        stream, key, recent = stream_service.studio_state(economy.db, creator, now_us())
        # Between streams: the last one's top supporters and its thank-you (live/thanks.py).
        evening = None if stream else thanks_service.last_evening(economy.db, creator, curve)
        return stream, key, gifts_for_tray(economy, who.locale), recent, evening

    stream, key, gifts, recent, evening = await run_in_threadpool(load)
    min_duration_s = economy.settings.battle_min_duration_s
    durations = sorted(d for d in {min_duration_s, *BATTLE_DURATIONS_S} if d >= min_duration_s)
    names = Locale.parse(who.locale)
    return page(
        request,
        who,
        "studio_live.html",
        stream=stream,
        overlay_url=f"/overlay/live?key={key}",  # one link in OBS, whichever stream is live
        gifts=gifts,
        languages=[(code, Locale.parse(code).get_display_name(names)) for code in STREAM_LANGUAGES],
        battle_durations=durations,
        default_duration_s=DEFAULT_DURATION_S,
        evening=evening,
        thanks_max_chars=CHAT_MAX_CHARS,
        boot={
            "messages": _messages(who),
            "stream_id": stream.id if stream else None,
            "started_at_us": stream.started_at_us if stream else None,
            "gifts": gifts,
            "recent_gifts": recent,  # [[unix second, gifts], ...] of the last minute
        },
    )


@router.get("/studio/club", response_class=HTMLResponse)
async def club(request: Request, economy: Econ) -> Response:
    """The fan club: its name and entry gift, the members; who may chat in the creator's rooms,
    with a club or without (docs/community.md)."""
    found = await _creator(request)
    if isinstance(found, Response):
        return found
    who, creator = found

    def load() -> tuple[Club | None, int, list[Member], ChatSetting]:
        chat = club_service.chat_mode(economy.db, creator.id)  # a club or none
        try:
            total, members = club_service.members(economy.db, creator, LIST_MAX, 0)
        except NotFound:  # no club yet: the page offers to name it
            return None, 0, [], chat
        return club_service.club(economy.db, creator.id)[0], total, members, chat

    found_club, total, members, chat = await run_in_threadpool(load)
    return page(
        request,
        who,
        "studio_club.html",
        club=found_club,
        chat=chat,
        total=total,
        members=[
            {**asdict(m), "last_seen": datetime.fromtimestamp(m.last_seen_at_us / 1e6, UTC)}
            for m in members
        ],
        gifts=gifts_for_tray(economy, who.locale),
        name_max=NAME_MAX_CHARS,
        top_level=LEVELS.top,
    )


@router.get("/studio/earnings", response_class=HTMLResponse)
async def earnings(
    request: Request, economy: Econ, days: str = str(DEFAULT_EARNINGS_DAYS)
) -> Response:
    """Earnings per day (an SVG chart drawn here), per stream, the CSV; payouts."""
    found = await _creator(request)
    if isinstance(found, Response):
        return found
    who, creator = found
    # A page, not the API: an unknown period shows the default rather than an error.
    period_days = int(days) if days in map(str, EARNINGS_DAYS) else DEFAULT_EARNINGS_DAYS
    end = today()
    start = days_before(end, period_days)
    wallet = await economy.wallet(creator.id)  # settles whole diamonds out of hundredths first
    statement = await run_in_threadpool(
        load_statement, economy.db, economy.settings, creator.id, start, end
    )
    policy = economy.payouts.policy
    chart = day_chart(
        {day: line.diamonds for day, line in statement.by_day},
        start,
        end,
        today=end,
        rtl=text_direction(who.locale) == "rtl",
    )
    payouts = statement.payouts
    payee = None if economy.payees is None else await economy.payees.get(creator.id)
    return page(
        request,
        who,
        "studio_earnings.html",
        statement=statement,
        chart=chart,
        period_days=period_days,
        periods=EARNINGS_DAYS,
        csv_url=f"/v1/creators/me/statement?format=csv&from={start}&to={end}",
        available_diamonds=wallet.diamonds,
        pending_diamonds=payouts.get("requested_diamonds", 0) + payouts.get("pending_diamonds", 0),
        pending_cents=payouts.get("requested_cents", 0) + payouts.get("pending_cents", 0),
        # What the ledger paid: an approval that settled a debt from its reservation paid less
        # than the payout's diamonds, and its cents are what was paid.
        paid_diamonds=statement.paid_out_diamonds,
        paid_cents=payouts.get("approved_cents", 0),
        min_payout_diamonds=policy.min_diamonds,
        min_payout_cents=policy.min_cents,
        # With a payout provider: the payee's state and what it lacks ("none": no account yet).
        payee_provider=economy.payees is not None,
        payee_state="none" if payee is None else payee.state.value,
        payee_missing=[NO_ACCOUNT] if payee is None else payee.missing,
        boot={"messages": _messages(who), "min_payout_diamonds": policy.min_diamonds},
    )


@router.get("/studio/subscriptions", response_class=HTMLResponse)
async def subscriptions(request: Request, economy: Econ) -> Response:
    """The subscription price (set through the API by studio_subscriptions.js), the paying
    subscribers and the last 30 days' figures."""
    found = await _creator(request)
    if isinstance(found, Response):
        return found
    who, creator = found
    subs = economy.subscriptions
    figures, rows = await run_in_threadpool(subs.subscribers, creator, SUBSCRIBERS_SHOWN)
    price = await run_in_threadpool(subs.price, creator.id)
    policy = subs.policy
    return page(
        request,
        who,
        "studio_subscriptions.html",
        price_coins=price,
        min_coins=policy.min_coins,
        max_coins=policy.max_coins,
        period_days=policy.period_s // 86_400,
        figures=figures,
        subscribers=[(sub, handle, day_of(sub.paid_until_us)) for sub, handle in rows],
        boot={"messages": _messages(who)},
    )

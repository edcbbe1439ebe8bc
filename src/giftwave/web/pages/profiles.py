"""``/@{handle}``: a person's public profile: whether they are live now (with the way into the
room), their published clips, their followers, the Follow button and, for a creator who offers
subscriptions, the Subscribe button; on one's own profile, one's settings (receiving gifted
subscriptions). Where the room's host name,
a clip's "by @…", the studio and a shared profile link lead. An unknown handle, and a blocked
account, is the site's 404 page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from giftwave.api.state import services
from giftwave.clock import day_of, now_us
from giftwave.notify import service as notify_service
from giftwave.social.levels import Curve
from giftwave.social.profile import Profile, profile
from giftwave.web.pages.site import not_found, page, visitor

router = APIRouter(include_in_schema=False)


def _minutes_seconds(duration_ms: int) -> str:
    seconds = max(0, round(duration_ms / 1000))
    return f"{seconds // 60}:{seconds % 60:02d}"


@router.get("/@{handle}", response_class=HTMLResponse)
async def profile_page(handle: str, request: Request) -> Response:
    who = await visitor(request)
    parts = services(request)
    found = await run_in_threadpool(profile, parts.db, handle, who.user, parts.levels.curve)
    if found is None:
        return not_found(request, who, "profile")
    price, subscription = await run_in_threadpool(
        parts.economy.subscriptions.offer,
        found.person.id,
        None if who.user is None else who.user.id,
    )
    at_us = now_us()
    me = who.user
    notifying = me is not None and await run_in_threadpool(
        notify_service.is_opted_in, parts.db, me.id, found.person.id
    )
    own = me is not None and me.id == found.person.id
    accepts_gifted = own and await run_in_threadpool(
        parts.economy.subscription_gifts.accepts, found.person.id
    )
    return page(
        request,
        who,
        "profile.html",
        profile=found,
        creator=found.person,  # _follow.html's followee
        following_creator=found.followed,
        notifying=notifying,
        durations={c.id: _minutes_seconds(c.duration_ms) for c in found.clips},
        level_floor=_level_floor(parts.levels.curve, found),
        # The Subscribe button (subscribe.js): a price means subscriptions are offered.
        sub_price=price,
        sub_period_days=parts.economy.subscriptions.policy.period_s // 86_400,
        subscribed=subscription is not None and subscription.has_access(at_us),
        sub_renews=subscription is not None and subscription.status.value == "active",
        sub_months=0 if subscription is None else subscription.months,
        sub_until=None if subscription is None else day_of(subscription.paid_until_us),
        # One's own profile: the receive-gifted-subscriptions setting (gifted_setting.js).
        accepts_gifted=accepts_gifted,
    )


def _level_floor(curve: Curve, found: Profile) -> int:
    """The coins of the level shown (its progress bar starts there); 0 below level 1."""
    level = found.level.progress.level if found.level is not None else 0
    return curve.threshold(level) if level >= 1 else 0

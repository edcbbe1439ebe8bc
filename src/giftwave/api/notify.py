"""Never miss it (docs/notifications.md): a follower opts in to a creator's notices, registers
a browser's push subscription, sets quiet hours, reads the inbox, and unsubscribes in one click
with the signed token a notice carries (no session in it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import SessionUser
from giftwave.api.identity import client_address
from giftwave.api.spending import profile_changed
from giftwave.api.state import services
from giftwave.errors import Code, RateLimited
from giftwave.notify import service
from giftwave.notify.preferences import QuietHours
from giftwave.notify.service import Notifications
from giftwave.ratelimit import Rate
from giftwave.web.i18n import LOCALES, negotiate

router = APIRouter(tags=["notifications"])

UNSUBSCRIBE_RATE: Final = Rate(1.0, 20)  # per client address


def _notifications(request: Request) -> Notifications:
    found: Notifications = services(request).notifications
    return found


async def _limit(request: Request, user_id: int) -> None:
    await _notifications(request).limit.take(user_id)


class NotifyOut(BaseModel):
    creator_id: int
    notify: bool


@router.put("/v1/creators/{creator_id}/notify", status_code=201, response_model=NotifyOut)
async def notify_on(
    creator_id: int, request: Request, response: Response, user: SessionUser
) -> NotifyOut:
    """Be told when this creator goes live, starts a battle or nears a goal (201; 200 when
    already on)."""
    await _limit(request, user.id)
    made = await run_in_threadpool(service.opt_in, services(request).db, user, creator_id)
    response.status_code = 201 if made else 200
    return NotifyOut(creator_id=creator_id, notify=True)


@router.delete("/v1/creators/{creator_id}/notify", status_code=204, response_class=Response)
async def notify_off(creator_id: int, request: Request, user: SessionUser) -> Response:
    await _limit(request, user.id)
    await run_in_threadpool(service.opt_out, services(request).db, user, creator_id)
    return Response(status_code=204)


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")
    p256dh: str = Field(min_length=1, max_length=128)
    auth: str = Field(min_length=1, max_length=64)


class PushSubscriptionIn(BaseModel):
    """What ``PushSubscription.toJSON()`` gives a page (``expirationTime`` is ignored), and the
    language its notices are to be written in: the page's (``locale``), or, when not given,
    the one the site would pick for this request (``?lang=``, the language cookie,
    ``Accept-Language``)."""

    model_config = ConfigDict(extra="ignore")
    endpoint: str = Field(min_length=1, max_length=1024)
    keys: PushKeys
    locale: str | None = Field(default=None, max_length=8)

    @field_validator("locale")
    @classmethod
    def _known(cls, locale: str | None) -> str | None:
        if locale is not None and locale not in LOCALES:
            raise ValueError(f"a locale is one of {', '.join(LOCALES)}")
        return locale


class PushSubscriptionOut(BaseModel):
    id: int
    endpoint: str


@router.post("/v1/me/push-subscriptions", status_code=201, response_model=PushSubscriptionOut)
async def add_push_subscription(
    body: PushSubscriptionIn, request: Request, user: SessionUser
) -> PushSubscriptionOut:
    """This browser's push subscription (again: updated). At most 10 per user."""
    await _limit(request, user.id)
    made = await run_in_threadpool(
        lambda: service.subscribe(
            services(request).db,
            user,
            endpoint=body.endpoint,
            p256dh=body.keys.p256dh,
            auth=body.keys.auth,
            allow_private=_notifications(request).allow_private,
            locale=body.locale or negotiate(request)[0],
        )
    )
    return PushSubscriptionOut(id=made.id, endpoint=made.endpoint)


@router.delete(
    "/v1/me/push-subscriptions/{subscription_id}", status_code=204, response_class=Response
)
async def remove_push_subscription(
    subscription_id: int, request: Request, user: SessionUser
) -> Response:
    await _limit(request, user.id)
    await run_in_threadpool(
        service.unsubscribe_browser, services(request).db, user, subscription_id
    )
    return Response(status_code=204)


class VapidOut(BaseModel):
    public_key: str | None = Field(description="the applicationServerKey; null: push is off")


@router.get("/v1/push/vapid-key", response_model=VapidOut)
async def vapid_key(request: Request) -> VapidOut:
    return VapidOut(public_key=_notifications(request).public_key)


class QuietHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time_zone: str = Field(min_length=1, max_length=64, description="IANA, e.g. Europe/Madrid")
    quiet_from_h: int = Field(ge=0, le=23)
    quiet_to_h: int = Field(ge=0, le=23)


@router.put("/v1/me/notify-settings", response_model=QuietHoursIn)
async def notify_settings(body: QuietHoursIn, request: Request, user: SessionUser) -> QuietHoursIn:
    """The time zone and the quiet hours (no push between them; the inbox still fills)."""
    await _limit(request, user.id)
    quiet = QuietHours(body.time_zone, body.quiet_from_h, body.quiet_to_h)
    await run_in_threadpool(service.set_quiet_hours, services(request).db, user, quiet)
    await profile_changed(request, user.id)  # the zone draws the viewer's spending days too
    return body


class NoticeOut(BaseModel):
    id: int
    kind: str
    creator_id: int
    subject: str
    payload: dict[str, Any]
    pushed: bool
    read: bool
    created_at: datetime


class InboxOut(BaseModel):
    unread: int
    notices: list[NoticeOut] = Field(description="newest first")
    next_before: int | None = Field(description="pass as before for the next page")


@router.get("/v1/me/inbox", response_model=InboxOut)
async def inbox(
    request: Request,
    user: SessionUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> InboxOut:
    rows, unread = await run_in_threadpool(
        lambda: service.inbox(services(request).db, user, limit=limit, before_id=before)
    )
    return InboxOut(
        unread=unread,
        notices=[
            NoticeOut(
                id=n.id,
                kind=n.kind.value,
                creator_id=n.creator_id,
                subject=n.subject,
                payload=n.payload,
                pushed=n.pushed,
                read=n.read,
                created_at=datetime.fromtimestamp(n.created_at_us / 1e6, tz=UTC),
            )
            for n in rows
        ],
        next_before=rows[-1].id if len(rows) == limit else None,
    )


class ReadOut(BaseModel):
    marked: int


@router.post("/v1/me/inbox/{notice_id}/read", response_model=ReadOut)
async def read_one(notice_id: int, request: Request, user: SessionUser) -> ReadOut:
    marked = await run_in_threadpool(service.mark_read, services(request).db, user, notice_id)
    return ReadOut(marked=marked)


@router.post("/v1/me/inbox/read", response_model=ReadOut)
async def read_all(request: Request, user: SessionUser) -> ReadOut:
    marked = await run_in_threadpool(service.mark_read, services(request).db, user, None)
    return ReadOut(marked=marked)


class UnsubscribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=100)


@router.post("/v1/notify/unsubscribe", response_model=NotifyOut)
async def unsubscribe(body: UnsubscribeIn, request: Request) -> NotifyOut:
    """One click from a push or the inbox: the token (signed, for this one creator) turns off
    that creator's notices. No login needed; the token is in the body, never a URL's query.
    Limited per client address (429 ``notify_rate_limited``): no login to limit by."""
    where = f"notify_unsubscribe:{client_address(request)}"
    wait_s = await services(request).rate_limiter.hit(where, UNSUBSCRIBE_RATE)
    if wait_s:
        raise RateLimited(
            Code.NOTIFY_RATE_LIMITED, "too many unsubscribes; wait a little", retry_after_s=wait_s
        )
    _, creator_id = await run_in_threadpool(
        service.unsubscribe_by_token,
        services(request).db,
        _notifications(request).policy,
        body.token,
    )
    return NotifyOut(creator_id=creator_id, notify=False)

"""``/me/inbox``: the user's notices (went live, a battle started, a goal is close), newest
first, each with a one-click "stop these" for its creator; and the button that turns on this
browser's push notifications (the permission is asked only when it is clicked: inbox.js)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from giftwave.api.state import services
from giftwave.notify import service
from giftwave.web.pages.site import page, to_login, visitor

router = APIRouter(include_in_schema=False)

SHOWN = 50


@router.get("/me/inbox", response_class=HTMLResponse)
async def inbox_page(request: Request) -> Response:
    who = await visitor(request)
    if who.user is None:
        return to_login("/me/inbox")
    parts = services(request)
    user = who.user
    rows, unread = await run_in_threadpool(
        lambda: service.inbox(parts.db, user, limit=SHOWN, before_id=None)
    )
    return page(
        request,
        who,
        "inbox.html",
        notices=rows,
        unread=unread,
        times={n.id: datetime.fromtimestamp(n.created_at_us / 1e6, tz=UTC) for n in rows},
        vapid_key=parts.notifications.public_key,
    )

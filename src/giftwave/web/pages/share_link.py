"""The short address of a share link, ``/s/{code}``: it records the visit, remembers the link
in a cookie and lands on the content (a redirect), or shows a page when the link is gone.

The redirect is the hot path: the code, the cookie secret and the day's salt come from memory,
an anonymous visit goes to a bounded batch writer (best effort: docs/sharing.md), and only a
logged-in visitor's visit (it carries a touch) is committed, on a worker thread, before the
answer. The event loop never waits for the database. Most openings do not even reach the
framework: ``redirect_in_memory`` answers them first, from ``Giftwave.__call__``
(docs/sharing.md, "The fast lane").
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.types import Scope, Send

from giftwave.api.auth import SESSION_COOKIE
from giftwave.api.security_headers import COMMON_HEADERS
from giftwave.api.shares import SHARE_COOKIE, Shares
from giftwave.api.state import app_services, services_if_started
from giftwave.clock import now_us
from giftwave.sharing.links import CODE_RE
from giftwave.web.pages.site import page, visitor

router = APIRouter()

# What a redirect leaves unquoted in its location, as Starlette's RedirectResponse does.
URL_SAFE: Final = ":/%#?=@[]!$&'()*+,;"


@router.get("/s/{code}", include_in_schema=False)
async def open_share(code: str, request: Request, sharing: Shares) -> Response:
    """The short link: record the visit, remember the link in a cookie, land on the content.

    ``redirect_in_memory`` answers most openings before this route is even matched; this is
    the whole path, for the rest: a logged-in visitor, a link not in memory, a full queue."""
    at = now_us()
    who = await visitor(request)
    link = await run_in_threadpool(sharing.live_link, code, at)
    if link is None:
        return page(request, who, "share_missing.html", status=404)
    if not sharing.keys_ready(at):
        await run_in_threadpool(sharing.load_keys, at)
    landing = sharing.landing_now(link)
    if landing is None:
        landing = await run_in_threadpool(sharing.landing_of, link)
    visit, cookie = sharing.visit(
        link,
        None if who.user is None else who.user.id,
        request.client.host if request.client else "",
        request.headers.get("user-agent", "")[:512],
        request.cookies.get(SHARE_COOKIE),
        at,
    )
    if visit is not None and not sharing.record(link, visit):
        await run_in_threadpool(sharing.write, link, visit)
    response = Response(status_code=302)
    response.raw_headers.extend(_redirect_headers(request.app, landing, cookie))
    return response


def _redirect_headers(app: FastAPI, landing: str, cookie: str | None) -> list[tuple[bytes, bytes]]:
    """A redirect's headers but its length: where it lands, and the share cookie."""
    headers = [
        (b"location", quote(landing, safe=URL_SAFE).encode()),
        (b"cache-control", b"no-store"),  # every opening is a visit
        *COMMON_HEADERS,  # the fast lane answers before the middleware that adds them
    ]
    if cookie is not None:
        parts = app_services(app)
        sharing = parts.sharing
        secure = "; Secure" if parts.settings.cookie_secure else ""
        # The value is a signed cookie of URL-safe characters and dots: nothing to quote.
        value = (
            f"{SHARE_COOKIE}={cookie}; HttpOnly; Max-Age={sharing.window_us // 1_000_000}; "
            f"Path=/; SameSite=lax{secure}"
        )
        headers.append((b"set-cookie", value.encode("latin-1")))
    return headers


async def redirect_in_memory(app: FastAPI, scope: Scope, send: Send) -> bool:
    """``GET /s/{code}`` answered before the framework, when all it needs is in memory: an
    anonymous visitor (no session cookie), a link this process knows is live, the day's salt,
    a stream to land on, room in the visit queue. False, having sent nothing: the route
    answers. The framework's routing and middleware cost more than the redirect itself
    (docs/benchmarks.md), and a shared link is clicked by crowds at once."""
    code = scope["path"][3:]
    parts = services_if_started(app)
    if scope["method"] != "GET" or parts is None or not CODE_RE.fullmatch(code):
        return False
    sharing = parts.sharing
    at = now_us()
    link = sharing.cached_link(code, at)
    if link is None or not sharing.keys_ready(at):
        return False
    landing = sharing.landing_now(link)
    if landing is None:
        return False
    cookies: dict[str, str] = {}
    user_agent = ""
    for name, value in scope["headers"]:
        if name == b"cookie":
            cookies.update(cookie_parser(value.decode("latin-1")))
        elif name == b"user-agent":
            user_agent = value.decode("latin-1")
    if SESSION_COOKIE in cookies:
        return False  # a visitor who may be logged in: their visit is committed first
    client = scope.get("client")
    visit, cookie = sharing.visit(
        link, None, client[0] if client else "", user_agent[:512], cookies.get(SHARE_COOKIE), at
    )
    if visit is not None and not sharing.record(link, visit):
        return False
    headers = [(b"content-length", b"0"), *_redirect_headers(app, landing, cookie)]
    await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
    return True

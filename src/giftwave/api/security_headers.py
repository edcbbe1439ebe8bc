"""The headers that tell a browser what a giftwave answer may do, set in one place.

Every answer: ``X-Content-Type-Options: nosniff`` (a JSON body or an upload is never read as a
script or a page) and ``Referrer-Policy: strict-origin-when-cross-origin`` (another site never
learns a path, which can hold a share code or an overlay key). Every HTML page: a
Content-Security-Policy that runs only this site's own script files (no inline script, no
``eval``), no plugins, no ``<base>``, forms that post only here, and no framing by other sites
except where a page opens that up for itself (the embed). Pages build theirs with
``page_policy`` (the viewer page adds the scheme of its video's address; the API's
documentation pages have their own, ``api_docs.docs_policy``); ``SecurityHeaders`` adds the
rest, and the default policy to any HTML answer that has none.

The two fast lanes in ``Giftwave.__call__`` answer before any middleware: they add
``COMMON_HEADERS`` themselves (a list extend, nothing to measure).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP: Final = "Content-Security-Policy"
COMMON_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
)
NO_FRAMING: Final = "'none'"
# The embed is another site's iframe (an Owncast external action): any web page may frame it.
ANY_FRAMING: Final = "http: https:"


def page_policy(framing: str = NO_FRAMING, *, playback_url: str | None = None) -> str:
    """The Content-Security-Policy of a page; ``playback_url``: the video it plays, whose
    segments may come from any host of its scheme (a CDN beside the HLS playlist's server)."""
    media = ["'self'", "blob:"]  # blob: hls.js feeds the video through a MediaSource
    connect = ["'self'"]  # the room's WebSocket (CSP 3: 'self' matches ws: and wss: here)
    scheme = urlsplit(playback_url).scheme if playback_url else ""
    if scheme in ("http", "https"):
        media.append(f"{scheme}:")
        connect.append(f"{scheme}:")  # hls.js fetches the playlist and segments
    directives = (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https:",  # a gift's picture may be on the operator's CDN
        f"media-src {' '.join(media)}",
        f"connect-src {' '.join(connect)}",
        "worker-src 'self' blob:",  # hls.js transmuxes in a worker made from a blob
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        f"frame-ancestors {framing}",
    )
    return "; ".join(directives)


PAGE_POLICY: Final = page_policy()
_PAGE_POLICY_BYTES: Final = PAGE_POLICY.encode()
_CSP_NAME: Final = CSP.lower().encode()


class SecurityHeaders:
    """ASGI middleware: ``COMMON_HEADERS`` on every HTTP answer that lacks them, and the
    default page policy on an HTML answer that has no policy of its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_headers(list(message.get("headers", ())))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _with_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _ in headers}
    headers.extend(h for h in COMMON_HEADERS if h[0] not in present)
    is_html = any(
        name.lower() == b"content-type" and value.lower().startswith(b"text/html")
        for name, value in headers
    )
    if is_html and _CSP_NAME not in present:
        headers.append((_CSP_NAME, _PAGE_POLICY_BYTES))
    return headers

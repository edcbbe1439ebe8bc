"""Every request body has a byte limit, enforced before any route reads it.

``BodyLimit`` is plain ASGI around the whole app (``Giftwave.__call__``, fast lanes included):
a route never sees more bytes than its limit, so a megabytes-long JSON document is never
buffered, parsed or validated, and nothing is written for it. Two checks:

- a declared ``Content-Length`` over the limit (or not a number) is answered 413
  ``payload_too_large`` at once, before the app is called;
- the bytes are counted as they arrive, so a chunked body (no length) or one that brings more
  than its header said is stopped at the first chunk past the limit (behind a server that
  frames bodies by their length, ``framed``, a declared length within the limit is all the
  app can be given, and only a body without one is counted): ``receive`` raises
  ``BodyTooLarge``, an HTTP 413 the app's own handler answers as problem+json (FastAPI lets an
  HTTP exception raised while it reads a body through untouched). Should one escape a route
  that swallowed it into nothing, this answers 413 itself if no answer was started.

The limit is ``GIFTWAVE_REQUEST_BODY_MAX_BYTES`` for every route but the few listed with a
limit of their own (``RouteLimit``): smaller for the gift, larger for the payment providers'
webhooks, the operator's ledger batches and clip uploads (which then check the file's own size).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from giftwave.api.problems import problem_response
from giftwave.api.security_headers import COMMON_HEADERS
from giftwave.errors import Code

_PARAM: Final = re.compile(r"\{[^}/]+\}")


@dataclass(frozen=True, slots=True)
class RouteLimit:
    """A route whose body may be larger (or must be smaller) than the default."""

    method: str
    template: str  # as the route is declared: "/v1/streams/{stream_id}/gifts"
    max_bytes: int
    # What a declared length past the limit is answered with: a route's own code where it had
    # one before this limit existed (clip uploads: clip_too_large).
    code: Code = Code.PAYLOAD_TOO_LARGE

    def pattern(self) -> re.Pattern[str]:
        """The template as the router matches it: a parameter is one non-empty segment."""
        parts = _PARAM.split(self.template)
        return re.compile("[^/]+".join(re.escape(p) for p in parts) + r"\Z")


class BodyTooLarge(HTTPException):
    """A body past its route's limit: 413 ``payload_too_large`` (api/problems.py)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"a request body here is at most {max_bytes} bytes")
        self.max_bytes = max_bytes


class BodyLimit:
    """The ASGI app ``app`` with every HTTP request body held to its limit (module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        default_bytes: int,
        routes: Iterable[RouteLimit],
        *,
        framed: bool = False,
    ) -> None:
        """``framed``: the server hands the app no more bytes than a request's declared
        ``Content-Length`` (HTTP/1.1 framing: what follows is the next request; uvicorn's
        parsers do so, tests/security/test_body_limit.py shows it). Such a request within its
        limit then goes to the app as it came, with no counting wrapped around it: the gift
        route's per-request cost, measured in docs/benchmarks.md."""
        assert default_bytes > 0
        self.app = app
        self.default_bytes = default_bytes
        self.framed = framed
        # By method, then matched in order: a handful of patterns, only for their methods.
        self._routes: dict[str, list[tuple[re.Pattern[str], RouteLimit]]] = {}
        for route in routes:
            assert route.max_bytes > 0
            self._routes.setdefault(route.method, []).append((route.pattern(), route))
        self._default = RouteLimit("*", "*", default_bytes)

    def limit_for(self, method: str, path: str) -> RouteLimit:
        """The limit of a body of ``method`` on ``path``."""
        for pattern, route in self._routes.get(method, ()):
            if pattern.match(path):
                return route
        return self._default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.limit_for(scope["method"], scope["path"])
        limit = route.max_bytes
        declared, length_alone = _content_length(scope)
        if declared is not None:
            if not declared.isdigit() or int(declared) > limit:
                await _refuse(route.code, limit, scope, receive, send)  # nothing read or built
                return
            if self.framed and length_alone:  # the server gives the app the declared bytes
                await self.app(scope, receive, send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(Code.PAYLOAD_TOO_LARGE, limit, scope, receive, send)


def _content_length(scope: Scope) -> tuple[str | None, bool]:
    """The first ``Content-Length``, and whether it alone frames the body: one such header
    and no ``Transfer-Encoding`` (with one, a server may read the body chunked, past the
    length: such a request is counted whatever it declared)."""
    declared: str | None = None
    alone = True
    for name, value in scope["headers"]:
        if name == b"content-length":
            if declared is None:
                declared = str(value.decode("latin-1"))
            else:
                alone = False
        elif name == b"transfer-encoding":
            alone = False
    return declared, alone


async def _refuse(code: Code, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(413, code, f"a request body here is at most {limit} bytes")
    response.raw_headers.extend(COMMON_HEADERS)
    # The body is left unread: the server closes the connection rather than read it.
    await response(scope, receive, send)

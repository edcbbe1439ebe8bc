"""api/body_limit.BodyLimit as plain ASGI, where a server does not frame the body by its
Content-Length: a body that brings more than its header said is stopped at the limit, the app
having read no byte past it; a route's own limit and code; other traffic untouched."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import Message, Receive, Scope, Send

from giftwave.api.body_limit import BodyLimit, BodyTooLarge, RouteLimit
from giftwave.errors import Code


class ReadingApp:
    """Reads the whole body and answers its size; remembers how much it got."""

    def __init__(self) -> None:
        self.called = False
        self.read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        request = Request(scope, receive)
        async for chunk in request.stream():
            self.read += len(chunk)
        await PlainTextResponse(str(self.read))(scope, receive, send)


async def call(
    app: Any,
    path: str,
    chunks: list[bytes],
    length: int | None,
    more_headers: tuple[tuple[bytes, bytes], ...] = (),
) -> tuple[int, bytes]:
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    headers.extend(more_headers)
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, body


LIMITS = (
    RouteLimit("POST", "/v1/streams/{stream_id}/gifts", 100),
    RouteLimit("POST", "/v1/clips", 10_000, Code.CLIP_TOO_LARGE),
)


async def test_a_body_longer_than_its_header_says_is_stopped_at_the_limit() -> None:
    inner = ReadingApp()
    limited = BodyLimit(inner, 1000, LIMITS)
    status, body = await call(limited, "/v1/me/club", [b"x" * 600] * 20, length=10)
    assert status == 413
    assert b"payload_too_large" in body
    assert inner.read <= 600  # the chunk that passed the limit never reached the app


async def test_behind_a_framing_server_a_declared_length_is_trusted() -> None:
    """``framed``: the server hands over no more than a lone Content-Length (uvicorn; see
    tests/security/test_body_limit.py), so such a request reaches the app with nothing counted;
    the shortcut this test sees is the app reading all that a non-framing caller gave it."""
    inner = ReadingApp()
    limited = BodyLimit(inner, 1000, LIMITS, framed=True)
    status, body = await call(limited, "/v1/me/club", [b"x" * 600] * 2, length=10)
    assert (status, body) == (200, b"1200")


async def test_behind_a_framing_server_a_length_beside_chunking_is_still_counted() -> None:
    """A Content-Length beside Transfer-Encoding, or two of them, does not frame the body for
    every server: counted as if there were none."""
    for extra in ((b"transfer-encoding", b"chunked"), (b"content-length", b"5000")):
        inner = ReadingApp()
        limited = BodyLimit(inner, 1000, LIMITS, framed=True)
        status, body = await call(limited, "/v1/me/club", [b"x" * 600] * 20, 10, (extra,))
        assert status == 413, extra
        assert b"payload_too_large" in body
        assert inner.read <= 600


async def test_no_length_at_all_is_counted_too() -> None:
    inner = ReadingApp()
    status, _ = await call(BodyLimit(inner, 1000, LIMITS), "/v1/x", [b"x" * 999, b"yy"], None)
    assert status == 413


async def test_within_the_limit_the_app_reads_everything() -> None:
    inner = ReadingApp()
    status, body = await call(BodyLimit(inner, 1000, LIMITS), "/v1/x", [b"x" * 500] * 2, 1000)
    assert (status, body) == (200, b"1000")


async def test_each_route_keeps_its_own_limit_and_code() -> None:
    inner = ReadingApp()
    limited = BodyLimit(inner, 1000, LIMITS)
    status, body = await call(limited, "/v1/streams/abc/gifts", [b"x" * 101], 101)
    assert status == 413
    assert b"payload_too_large" in body
    assert not inner.called
    status, body = await call(limited, "/v1/clips", [b"x" * 5000], 20_000)
    assert status == 413
    assert b"clip_too_large" in body
    assert not inner.called
    status, _ = await call(limited, "/v1/clips", [b"x" * 5000], 5000)
    assert status == 200
    # a parameter is one segment: a longer path is not the gift route
    assert limited.limit_for("POST", "/v1/streams/a/b/gifts").max_bytes == 1000
    assert limited.limit_for("GET", "/v1/streams/a/gifts").max_bytes == 1000


async def test_a_malformed_length_is_refused_before_the_app() -> None:
    inner = ReadingApp()
    limited = BodyLimit(inner, 1000, LIMITS)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/x",
        "headers": [(b"content-length", b"-1")],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await limited(scope, receive, send)
    assert sent[0]["status"] == 413
    assert not inner.called


def test_the_refusal_is_an_http_413() -> None:
    assert BodyTooLarge(5).status_code == 413

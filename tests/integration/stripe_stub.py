"""Stripe at its boundary, with no Stripe: recorded payloads, signatures in Stripe's scheme
(``t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">``), and a local HTTP server on 127.0.0.1 the
real SDK talks to. Each test module gives the server its routes (``route``); the server
records every request, and answers a queued canned reply first when there is one."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

FIXTURES = Path(__file__).parent.parent / "fixtures" / "stripe"
serial = itertools.count(1)

Answer = tuple[int, dict[str, Any], dict[str, str]]


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def sign(payload: bytes, *, secret: str, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def no_route() -> Answer:
    return 404, {"error": {"type": "invalid_request_error", "message": "no such route"}}, {}


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    form: dict[str, str]


class StripeStub:
    """Stripe's API on 127.0.0.1: ``route`` answers each request (as the module's part of
    Stripe does); ``reply`` queues a canned answer; ``answer_late`` makes the next requests
    take effect but answer only after the client has given up."""

    def __init__(self, route: Callable[[SeenRequest], Answer]) -> None:
        self.requests: list[SeenRequest] = []
        self.replies: deque[Answer] = deque()
        self.late_s = 0.0
        self._late_count = 0
        self._late_only: tuple[str, str] | None = None
        self._route = route
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stub._answer(self)

            def do_GET(self) -> None:
                stub._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> StripeStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def reply(self, status: int, body: dict[str, Any], **headers: str) -> None:
        self.replies.append((status, body, headers))

    def answer_late(self, count: int, late_s: float, only: tuple[str, str] | None = None) -> None:
        """The next ``count`` requests (of ``only``'s method and path, when given) are late."""
        with self._lock:
            self._late_count, self.late_s, self._late_only = count, late_s, only

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode()
        path, _, query = handler.path.partition("?")
        seen = SeenRequest(
            handler.command,
            path,
            {k.lower(): v for k, v in handler.headers.items()},
            dict(parse_qsl(body or query, keep_blank_values=True)),
        )
        with self._lock:
            self.requests.append(seen)
            canned = self.replies.popleft() if self.replies else None
            late = self._late_count > 0 and self._late_only in (None, (seen.method, seen.path))
            self._late_count -= 1 if late else 0
            status, answer, headers = canned if canned is not None else self._route(seen)
        if late:
            time.sleep(self.late_s)  # done here, and the client stopped waiting
        out = json.dumps(answer).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(out)))
            handler.send_header("Request-Id", f"req_stub{next(serial):010d}")
            for name, value in headers.items():
                handler.send_header(name.replace("_", "-"), value)
            handler.end_headers()
            handler.wfile.write(out)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on a late answer

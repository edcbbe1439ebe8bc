"""A webhook receiver on 127.0.0.1 for tests: records every request it gets, and answers
each delivery as told (fail its first N attempts, or everything until told otherwise).

    with Receiver() as receiver:
        url = receiver.url("/alerts")
        receiver.fail_first("/flaky", 2)       # each delivery: 500, 500, then 200
        ...
        await receiver.until(lambda got: len(got) >= 3)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final

import orjson

HOST: Final = "127.0.0.1"
BODY_MAX_BYTES: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at_s: float  # time.monotonic() when it arrived
    status: int  # what the receiver answered

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed

    @property
    def delivery(self) -> str:
        return self.headers["giftwave-delivery"]


class Receiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._got: list[Received] = []
        self._fail_first: dict[str, int] = {}
        self._failing: dict[str, int] = {}  # path → status answered to everything
        self._attempts: Counter[tuple[str, str]] = Counter()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length", "0")), BODY_MAX_BYTES)
                body = self.rfile.read(length)
                status = receiver._answer(self.path, self.headers.get("Giftwave-Delivery", ""))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver._got.append(
                        Received(self.path, headers, body, time.monotonic(), status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"no")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default 5 drops connections a burst opens at once
            daemon_threads = True

        self._server = Server((HOST, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _answer(self, path: str, delivery: str) -> int:
        with self._lock:
            if path in self._failing:
                return self._failing[path]
            self._attempts[(path, delivery)] += 1
            return 500 if self._attempts[(path, delivery)] <= self._fail_first.get(path, 0) else 200

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}{path}"

    def fail_first(self, path: str, attempts: int) -> None:
        """Each delivery to ``path`` is answered 500 this many times, then 200."""
        with self._lock:
            self._fail_first[path] = attempts

    def fail_all(self, path: str, status: int | None = 503) -> None:
        """Answer everything to ``path`` with ``status``; None: answer normally again."""
        with self._lock:
            if status is None:
                self._failing.pop(path, None)
            else:
                self._failing[path] = status

    def got(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._got if path is None or r.path == path]

    def deliveries(self, path: str | None = None) -> list[Received]:
        """The first request of each delivery (by its ``Giftwave-Delivery`` header), as a
        receiver that dedupes on it sees them: a delivery comes again when its lease ran out
        before its answer was recorded (at least once), e.g. when a test moves the clock
        on by hours while one is in flight."""
        first: dict[str, Received] = {}
        for received in self.got(path):
            first.setdefault(received.delivery, received)
        return list(first.values())

    async def until(
        self, done: Callable[[list[Received]], bool], path: str | None = None, wait_s: float = 20
    ) -> list[Received]:
        """Wait (bounded) until what ``path`` received satisfies ``done``; return it."""
        deadline = time.monotonic() + wait_s
        while not done(got := self.got(path)):
            assert time.monotonic() < deadline, f"not received in {wait_s} s: {got}"
            await asyncio.sleep(0.05)
        return got

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

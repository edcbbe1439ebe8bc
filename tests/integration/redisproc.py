"""A private `redis-server` for fault tests: on a free port of 127.0.0.1, no persistence, so
that killing and starting it again gives an EMPTY Redis, and no other test's Redis is touched.

    with PrivateRedis(tmp_path) as redis:
        env["GIFTWAVE_BROKER_URL"] = redis.url
        redis.kill()     # SIGKILL: every connection drops, every key is gone
        redis.start()    # the same port, empty

A missing `redis-server` fails the test: a backend that is missing is never a skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Final

import pytest
from serverproc import HOST, free_port

START_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 10.0


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class PrivateRedis:
    def __init__(self, log_dir: Path) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail("redis-server is required for this test and is not installed")
        self._executable = executable
        self._log_path = log_dir / "redis.log"
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        """Start on ``port`` (again), empty; return once it answers PING (bounded)."""
        assert self._proc is None or self._proc.poll() is not None, "already running"
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    self._executable,
                    "--port",
                    str(self.port),
                    "--bind",
                    HOST,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers_ping(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start:\n{self._log_path.read_text()}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL, like a crash: the data (in memory only) is gone with it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()

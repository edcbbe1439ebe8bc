"""A private ``redis-server`` on a free port of 127.0.0.1, in memory only: for the fault
campaign (``giftwave chaos``, which kills and restarts it), ``giftwave bench cluster``, and the
fault tests (tests/integration/redisproc.py). One process runner for all three."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Final

HOST: Final = "127.0.0.1"
STOP_TIMEOUT_S: Final = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A Redis of one's own, in memory only: killed and started again, it is empty. Never the
    shared one on 6379, which other processes use."""

    def __init__(self, log_dir: Path) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not on PATH (scripts/services.sh installs it)")
        self._executable = executable
        self._log_path = log_dir / "redis.log"
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
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
        deadline = time.monotonic() + 10.0
        while not _answers_ping(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=STOP_TIMEOUT_S)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False

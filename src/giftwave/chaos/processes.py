"""The processes a campaign owns: ``giftwave serve`` nodes and a private ``redis-server``,
each on a free port of 127.0.0.1, each log in a file (a pipe could fill and block a node).

The chaos command must not import the tests, so this is the product's own small runner; the
shared PostgreSQL is restarted only when the operator asks (``--restart-postgres``)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

import httpx

from giftwave.private_redis import HOST, free_port
from giftwave.private_redis import PrivateRedis as PrivateRedis  # the campaign kills it

START_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 30.0
PG_RESTART_TIMEOUT_S: Final = 60.0


def giftwave_executable() -> str:
    beside = Path(sys.executable).parent / "giftwave"
    return str(beside) if beside.exists() else (shutil.which("giftwave") or "giftwave")


class Node:
    """One ``giftwave serve`` on a fixed port: killed, paused and started again in place."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self._env = env
        self._log_path = log_dir / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    def start(self) -> None:
        with self._log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [giftwave_executable(), "serve", "--host", HOST, "--port", str(self.port)],
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.await_healthy()

    def await_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError(f"node {self.name} exited:\n{self.log_tail()}")
            try:
                if httpx.get(self.base + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node {self.name} did not become ready:\n{self.log_tail()}")

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, like a crash: nothing is flushed, nothing is answered."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=STOP_TIMEOUT_S)

    def pause(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        if self.paused:
            self.resume()
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def restart_postgres() -> None:
    """Restart the local PostgreSQL cluster (every connection drops). Only on request: other
    processes on this machine may be using it."""
    versions = sorted(os.listdir("/etc/postgresql"))
    if not versions:
        raise RuntimeError("no PostgreSQL cluster under /etc/postgresql")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=PG_RESTART_TIMEOUT_S,
    )

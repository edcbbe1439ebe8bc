"""Real `giftwave` processes for fault tests: serve on a free port, kill -9, run the CLI.

    with ServerGroup(tmp_path, env) as servers:
        [server] = servers.start("a")        # waits for /healthz, bounded
        ...
        server.kill()                        # SIGKILL, like a crash
        [again] = servers.start("a-restarted")

Every process started through a ``ServerGroup`` is stopped when the block ends, whatever
happened; if the block raised, each server's log (stdout and stderr, kept in a file so that
no pipe can fill up and block the server) is printed, so a failure shows what the servers saw.
Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import httpx
from suite_env import CHEAP_PASSWORD_HASHES

from giftwave.db.engine import make_engine
from giftwave.db.engine import migrate as run_migrations
from giftwave.db.urls import DatabaseUrl, parse_database_url

HOST: Final = "127.0.0.1"
ADMIN_TOKEN: Final = "fault-test-token"
START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 15.0
CLI_TIMEOUT_S: Final = 120.0
START_ATTEMPTS: Final = 3  # a free port can be taken between our probe and the server's bind
LOG_LINES_SHOWN: Final = 150
# uvicorn finishes its graceful shutdown, then re-raises the SIGTERM it caught.
GRACEFUL_EXIT_CODES: Final = (0, -signal.SIGTERM)


def giftwave_executable() -> str:
    """The `giftwave` script of the interpreter running the tests (the project's venv)."""
    beside = Path(sys.executable).parent / "giftwave"
    if beside.exists():
        return str(beside)
    found = shutil.which("giftwave")
    assert found is not None, "the giftwave console script is not installed"
    return found


def giftwave_env(db: DatabaseUrl) -> dict[str, str]:
    """The environment of a child process: ours without GIFTWAVE_*, plus the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTWAVE_")}
    env["GIFTWAVE_DATABASE_URL"] = db.url
    env["GIFTWAVE_ADMIN_TOKEN"] = ADMIN_TOKEN
    env["PYTHONUNBUFFERED"] = "1"  # the log file is complete even after SIGKILL
    # Tests sign many people up from 127.0.0.1; tests/security tests the limit itself.
    env["GIFTWAVE_REGISTER_ADDRESS_FREE"] = "100000"
    # The fraud rules would flag these tests' creators, who cash out seconds after their first
    # gift; a test of the rules turns them on (test_web_risk_queue.py).
    env["GIFTWAVE_RISK_INTERVAL_S"] = "0"
    env.update(CHEAP_PASSWORD_HASHES)
    return env


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `giftwave ARGS...` to completion (bounded) and return what it printed."""
    return subprocess.run(
        [giftwave_executable(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def migrate(env: dict[str, str]) -> None:
    """What `giftwave migrate` does, in this process: the same migrations, without a Python
    start (about 1 s of CPU each; ~0.15 s here). The command itself is tested in
    tests/unit/test_config.py."""
    engine = make_engine(parse_database_url(env["GIFTWAVE_DATABASE_URL"]))
    try:
        run_migrations(engine)
    finally:
        engine.dispose()


def assert_ledger_verify_clean(env: dict[str, str]) -> None:
    """`giftwave ledger verify` in its own process: exit code 0 and the word "clean"."""
    verify = run_cli(["ledger", "verify"], env)
    assert verify.returncode == 0, f"ledger verify:\n{verify.stdout}\n{verify.stderr}"
    assert "clean" in verify.stdout, verify.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """One `giftwave serve` on 127.0.0.1 and a free port, its output in ``log_path``."""

    def __init__(
        self, name: str, env: dict[str, str], log_path: Path, args: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.env = env
        self.log_path = log_path
        self.args = args  # more `giftwave serve` options (--access-log)
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._terminated = False

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def spawn(self) -> None:
        """Start the process on a free port, without waiting for it."""
        self.port = free_port()
        self._terminated = False
        with self.log_path.open("ab") as log:
            log.write(f"--- {self.name}: giftwave serve --port {self.port}\n".encode())
            log.flush()
            # The child holds its own copy of the file descriptor; ours closes here.
            self._proc = subprocess.Popen(
                [
                    giftwave_executable(),
                    "serve",
                    "--host",
                    HOST,
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def await_healthy(self) -> None:
        """Wait until /healthz answers (bounded); respawn if the port was taken meanwhile."""
        for attempt in range(START_ATTEMPTS):
            if self._wait_healthy():
                return
            port_taken = "address already in use" in self.log_text().lower()
            if not port_taken or attempt == START_ATTEMPTS - 1:
                break
            self.spawn()
        raise AssertionError(f"server {self.name} did not become healthy:\n{self.log_tail()}")

    def start(self) -> None:
        self.spawn()
        self.await_healthy()

    def _wait_healthy(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        # trust_env=False: no proxy from the environment ever sees this local traffic.
        with httpx.Client(base_url=self.base_url, timeout=1.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    self._proc.wait()
                    return False
                try:
                    if client.get("/healthz").status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.stop()
        return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing, no goodbye — a crash."""
        assert self._proc is not None, "not started"
        if self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGKILL)
        self._proc.wait(timeout=STOP_TIMEOUT_S)

    def request_stop(self) -> None:
        """SIGTERM, once (uvicorn's graceful shutdown; a second one would force it)."""
        if self._proc is not None and self._proc.poll() is None and not self._terminated:
            self._terminated = True
            self._proc.terminate()

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if the graceful shutdown takes too long."""
        if self._proc is None:
            return
        self.request_stop()
        try:
            self._proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=STOP_TIMEOUT_S)

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self) -> str:
        """The log without the access lines of successful requests, last lines only."""
        lines = [
            line
            for line in self.log_text().splitlines()
            if not (line.startswith("INFO:") and '" 200' in line)
        ]
        return "\n".join(lines[-LOG_LINES_SHOWN:])


class ServerGroup:
    """Starts servers, and stops every one of them when the ``with`` block ends."""

    def __init__(self, log_dir: Path, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        self.log_dir = log_dir
        self.env = env
        self.args = args
        self.servers: list[ServerProcess] = []

    def start(self, *names: str) -> list[ServerProcess]:
        """Start one server per name, side by side; return them once all answer /healthz."""
        started = [
            ServerProcess(name, self.env, self.log_dir / f"server-{name}.log", self.args)
            for name in names
        ]
        self.servers.extend(started)
        for server in started:
            server.spawn()
        for server in started:
            server.await_healthy()
        return started

    def stop_all(self) -> None:
        """Stop every server, side by side."""
        for server in self.servers:
            server.request_stop()
        for server in self.servers:
            server.stop()

    def __enter__(self) -> ServerGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()
        if exc is not None:
            for server in self.servers:
                print(f"===== log of server {server.name} (exit code {server.returncode})")
                print(server.log_tail())


def wait_dead(pid: int) -> None:
    """Until a killed process's sockets are closed (it may stay a zombie until reaped)."""
    for _ in range(500):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(") ", 1)[1].startswith(("Z", "X")):
                    return
        except FileNotFoundError:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not die")


@contextmanager
def one_server(db: DatabaseUrl, log_dir: Path, **env: str) -> Iterator[ServerProcess]:
    """A migrated database and one real server on it (cheap password hashing; ``env`` adds
    GIFTWAVE_* settings): what most browser tests need."""
    environment = giftwave_env(db)
    environment.update(GIFTWAVE_PASSWORD_TIME_COST="1", GIFTWAVE_PASSWORD_MEMORY_KIB="8", **env)
    migrate(environment)
    with ServerGroup(log_dir, environment) as servers:
        [server] = servers.start("a")
        yield server


_handles = itertools.count(1)


def registered_over_http(
    client: httpx.Client, role: str, prefix: str, password: str
) -> dict[str, Any]:
    """A new adult user of ``role`` on a running server: the register answer (``user``,
    ``token``, ``csrf_token``), for a test that also needs the session's cookies."""
    handle = f"{prefix}{role[:2]}{next(_handles)}"
    r = client.post(
        "/v1/auth/register",
        json={
            "handle": handle,
            "email": f"{handle}@example.test",
            "password": password,
            "birth_date": "1990-01-01",
            "country": "US",
            "role": role,
        },
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def register_over_http(
    client: httpx.Client, role: str, prefix: str, password: str
) -> tuple[int, dict[str, str]]:
    """A new adult user of ``role`` on a running server: its id and bearer headers."""
    body = registered_over_http(client, role, prefix, password)
    return int(body["user"]["id"]), {"Authorization": f"Bearer {body['token']}"}

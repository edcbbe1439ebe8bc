"""The server under measurement: a real ``giftwave serve`` process on a scratch database, and
the room every server benchmark uses (one live creator, funded viewers), set up through the
public API like any client would."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx
import uvloop

from giftwave import tuning
from giftwave.bench.scratch import scratch_database
from giftwave.db.engine import make_engine, migrate
from giftwave.db.urls import DatabaseUrl
from giftwave.ledger.verify import verify_ledger
from giftwave.tuning import OpenFilesLimit

T = TypeVar("T")

ADMIN_TOKEN: Final = "bench-admin-token"
START_TIMEOUT_S: Final = 60.0
VIEWER_COINS: Final = 1_000_000


@dataclass(slots=True)
class ServerProcess:
    """A server under measurement, by its address and its process."""

    base: str  # http://127.0.0.1:port
    host: str
    port: int
    pid: int

    def cpu_s(self) -> float:
        """CPU time (user + system) the server has used so far, its worker processes included:
        a figure other load on the machine barely moves, unlike gifts/s."""
        return sum(_cpu_s(pid) for pid in [self.pid, *_descendants(self.pid)])

    def main_cpu_s(self) -> float:
        """CPU time of the server's main process alone (its threads included): the event loop's
        share, without a ledger writer process or workers."""
        return _cpu_s(self.pid)

    def rss_kb(self) -> int:
        """Resident memory of the server process, from the kernel."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS for the server process")


@dataclass(slots=True)
class Served(ServerProcess):
    """``giftwave serve`` on a scratch database."""

    db: DatabaseUrl
    log: Path  # its stdout and stderr, while it runs
    verified: bool = False  # `giftwave ledger verify` passed after the server stopped

    def log_says(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")


@dataclass(frozen=True, slots=True)
class BenchRoom:
    stream_id: str
    creator_token: str
    viewer_tokens: list[str]
    viewer_ids: list[int] = field(default_factory=list)  # in the order of viewer_tokens


_TICKS_PER_S: Final = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces): field 3 onwards."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _cpu_s(pid: int) -> float:
    try:
        fields = _stat_fields(pid)
    except FileNotFoundError:  # a worker that has just exited
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime, stime


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(
                    int(entry.name)
                )
            except (FileNotFoundError, ProcessLookupError):
                continue
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def raise_open_files_limit() -> OpenFilesLimit:
    """Thousands of sockets on both ends; a server started afterwards inherits the limit."""
    return tuning.raise_open_files_limit()


@contextmanager
def served(
    database_url: str,
    name: str,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    source: str | None = None,
) -> Iterator[Served]:
    """A migrated scratch database and a server on it; afterwards, the ledger must verify.

    ``source``: the ``src`` directory of another checkout of giftwave (an earlier commit, say)
    to serve from instead of this one, with the same interpreter and libraries: its own
    migrations make the database, its own ``ledger verify`` checks it after."""
    with scratch_database(database_url, name) as db, tempfile.TemporaryDirectory() as tmp:
        foreign = {} if source is None else {"PYTHONPATH": source}
        if source is None:
            engine = make_engine(db)
            migrate(engine)
            engine.dispose()
        else:
            _run_foreign(["migrate"], db, foreign)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        environment = {
            **os.environ,
            "GIFTWAVE_DATABASE_URL": db.url,
            "GIFTWAVE_ADMIN_TOKEN": ADMIN_TOKEN,
            "GIFTWAVE_PASSWORD_TIME_COST": "1",
            "GIFTWAVE_PASSWORD_MEMORY_KIB": "8",
            # Every bench viewer signs up from the load generator's one address.
            "GIFTWAVE_REGISTER_ADDRESS_FREE": "100000",
            **(env or {}),
            **foreign,
        }
        command = [_giftwave(), "serve", "--host", "127.0.0.1", "--port", str(port)]
        with open(Path(tmp) / "server.log", "wb") as log:
            proc = subprocess.Popen(
                [*command, "--workers", str(workers)],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            server = Served(
                base=base, host="127.0.0.1", port=port, pid=proc.pid, db=db, log=Path(log.name)
            )
            try:
                _await_healthy(base, proc)
                yield server
            finally:
                _stop(proc)
            if source is None:
                server.verified = _ledger_verifies(db)
            else:
                server.verified = _run_foreign(["ledger", "verify"], db, foreign, check=False)


@contextmanager
def bare_served() -> Iterator[ServerProcess]:
    """The bare FastAPI baseline (``bench/bare_api.py``) in its own process, on the same
    uvicorn options and runtime tuning as ``giftwave serve``."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "giftwave.bench.bare_api", "--port", str(port)]
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "bare.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _await_healthy(base, proc)
            yield ServerProcess(base=base, host="127.0.0.1", port=port, pid=proc.pid)
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a server drains), then SIGKILL if it has not ended in 30 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _run_foreign(
    args: list[str], db: DatabaseUrl, foreign: dict[str, str], *, check: bool = True
) -> bool:
    """``giftwave <args>`` of another checkout on ``db``; True when it exits 0."""
    done = subprocess.run(
        [_giftwave(), *args],
        env={**os.environ, "GIFTWAVE_DATABASE_URL": db.url, **foreign},
        capture_output=True,
        timeout=START_TIMEOUT_S,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"giftwave {' '.join(args)} exited {done.returncode}: {done.stderr!r}")
    return done.returncode == 0


def _ledger_verifies(db: DatabaseUrl) -> bool:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            return verify_ledger(conn).ok
    finally:
        engine.dispose()


async def setup_room(base: str, viewers: int) -> BenchRoom:
    """A live creator and ``viewers`` funded viewers, registered through the API."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30.0) as client:

        async def person(n: int, role: str) -> tuple[int, str]:
            r = await client.post(
                "/v1/auth/register",
                json={
                    "handle": f"{role}{n}",
                    "email": f"{role}{n}@bench.invalid",
                    "password": "bench-password",
                    "birth_date": "1990-01-01",
                    "country": "US",
                    "role": role,
                },
            )
            r.raise_for_status()
            return int(r.json()["user"]["id"]), str(r.json()["token"])

        _, creator_token = await person(0, "creator")
        r = await client.post(
            "/v1/streams",
            json={"title": "bench"},
            headers={"Authorization": f"Bearer {creator_token}"},
        )
        r.raise_for_status()
        stream_id = str(r.json()["id"])
        sem = asyncio.Semaphore(16)

        async def viewer(n: int) -> tuple[int, str]:
            async with sem:
                user_id, token = await person(n, "viewer")
                grant = await client.post(
                    f"/v1/admin/users/{user_id}/coins",
                    json={"coins": VIEWER_COINS, "idempotency_key": "bench"},
                    headers=admin,
                )
                grant.raise_for_status()
                return user_id, token

        people = await asyncio.gather(*(viewer(n) for n in range(1, viewers + 1)))
    return BenchRoom(
        stream_id=stream_id,
        creator_token=creator_token,
        viewer_tokens=[token for _, token in people],
        viewer_ids=[user_id for user_id, _ in people],
    )


async def socket_tickets(base: str, stream_id: str, tokens: list[str]) -> list[str]:
    """A one-use ticket to the room's socket for each token, in order (asked for just before
    connecting: a ticket lapses in seconds)."""
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30.0) as client:
        sem = asyncio.Semaphore(16)

        async def one(token: str) -> str:
            async with sem:
                r = await client.post(
                    f"/v1/streams/{stream_id}/ws-ticket",
                    headers={"Authorization": f"Bearer {token}"},
                )
                r.raise_for_status()
                return str(r.json()["ticket"])

        return list(await asyncio.gather(*(one(token) for token in tokens)))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run the load generator on uvloop: the client shares the machine with the server, and
    every microsecond it spends is one the server does not get."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _giftwave() -> str:
    return shutil.which("giftwave") or str(Path(sys.executable).parent / "giftwave")


def _await_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server under measurement exited with {proc.returncode}")
        try:
            if httpx.get(base + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server under measurement did not become healthy")

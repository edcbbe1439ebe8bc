"""What the installs and the fast paths rely on, checked before they rot:

- every dependency pyproject.toml names is in the lock `make` installs from (a dependency added
  to pyproject.toml without refreshing the lock would be missing from a fresh install, where
  --require-hashes installs nothing else), at a version its bounds allow, with hashes;
- the room sockets' direct writes still find what they read inside uvicorn (the protocol's
  transport, ``handshake_complete``, ``conn.extensions``; api/room_sockets.py): a real uvicorn,
  configured as `giftwave serve` runs it, hands a room socket a ``TransportSink``, and the
  frame written straight to the transport reaches a real client. When a uvicorn release renames
  one of them, the rooms silently fall back to the slow path; this test says so first.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import tomllib
from pathlib import Path
from typing import Final

import pytest
import uvicorn
import websockets
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from giftwave.api.app import UVICORN_OPTIONS
from giftwave.api.room_sockets import KeepServerSend, open_sink
from giftwave.realtime.sockets import Frame, TransportSink

ROOT: Final = Path(__file__).resolve().parents[2]
PINNED: Final = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
WAIT_S: Final = 10.0


def _locked(lock: Path) -> dict[str, Version]:
    """name -> version of every package a lock pins; each pin must carry its hashes."""
    pins: dict[str, Version] = {}
    lines = lock.read_text().splitlines()
    for i, line in enumerate(lines):
        match = PINNED.match(line)
        if match is None:
            continue
        name = canonicalize_name(match.group(1))
        assert "--hash=sha256:" in lines[i + 1], f"{lock.name}: {name} has no hash"
        pins[name] = Version(match.group(2))
    return pins


def _unlocked(requirements: list[str], pins: dict[str, Version]) -> list[str]:
    """The requirements a lock lacks, or pins at a version they do not allow."""
    missing = []
    for text in requirements:
        req = Requirement(text)
        version = pins.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            missing.append(f"{text} (locked: {version})")
    return missing


@pytest.mark.parametrize(
    ("lock", "extras"), [("requirements.lock", ()), ("requirements-dev.lock", ("dev",))]
)
def test_every_dependency_of_pyproject_is_in_the_lock(lock: str, extras: tuple[str, ...]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    pins = _locked(ROOT / lock)
    assert _unlocked(wanted, pins) == [], f"refresh the locks: `make lock` ({lock})"


def test_the_lock_check_sees_a_missing_or_stale_pin() -> None:
    pins = {"fastapi": Version("0.115.0")}
    assert _unlocked(["fastapi>=0.115", "prometheus-client>=0.20"], pins) == [
        "prometheus-client>=0.20 (locked: None)"
    ]
    assert _unlocked(["FastAPI>=0.116"], pins) == ["FastAPI>=0.116 (locked: 0.115.0)"]


async def test_room_sockets_write_straight_to_uvicorns_transport() -> None:
    sinks: list[str] = []

    async def room(ws: WebSocket) -> None:
        await ws.accept()
        sink = open_sink(ws)
        sinks.append(type(sink).__name__)
        sink.write(Frame('{"events":[]}'))
        with contextlib.suppress(WebSocketDisconnect):
            await ws.receive_text()
        await sink.stop()

    app = KeepServerSend(Starlette(routes=[WebSocketRoute("/ws", room)]))
    # As `giftwave serve` runs uvicorn, but on this test's event loop and socket.
    options = {k: v for k, v in UVICORN_OPTIONS.items() if k not in ("loop", "log_level")}
    config = uvicorn.Config(app, lifespan="off", log_level="warning", **options)
    server = uvicorn.Server(config)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(WAIT_S):
            for _ in range(int(WAIT_S / 0.01)):  # uvicorn has no event for "listening"
                if server.started:
                    break
                await asyncio.sleep(0.01)
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as client:
                assert await client.recv() == '{"events":[]}'
        assert sinks == [TransportSink.__name__], (
            "room sockets fell back to the ASGI path: uvicorn's websockets protocol no longer "
            "has what api/room_sockets.py reads (transport, handshake_complete, conn.extensions)"
        )
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, WAIT_S)
        listener.close()

"""A creator floods their room with moderation commands, against a real server.

The attack: one creator socket sent half a million ``delete_message``/``mute`` commands in
seconds; each was an event in every viewer's next frame, and the room's resume ring kept 600
of those huge frames: the server grew by 50 MB and stayed there. Now the moderation commands
are rate-limited per user (api/live.py), and what gets through is said once per tick in one
compact event per kind, with deletes of unknown or already deleted messages dropped; the ring
is bounded in bytes as well as frames. Measured here: the server's RSS, every frame a viewer
receives, and a resume after big chat lines pushed old frames out of a small ring.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import pytest
import websockets
from liveclient import Client, as_user, go_live, person
from serverproc import ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

pytestmark = pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)

RING_MAX_BYTES: Final = 4096
SOCKETS: Final = 6  # the flooder's, side by side
COMMANDS_PER_SOCKET: Final = 3000
FLOOD_S: Final = 6.0
# A frame carries at most 100 deleted ids and 100 mutes per tick (live/room.py), ~5 KB, plus
# the tick's other news; a viewer's frames in this room stay far below this.
FRAME_MAX_BYTES: Final = 16 * 1024
# What the room may keep: a ring of 4 KiB here, at most 10,000 mutes (~1.5 MB), 1,000 chat ids;
# the sockets' buffers are bounded by the refusals that close them. The rest is the allocator's
# slack; before the fix this flood grew the server by tens of megabytes.
RSS_GROWTH_MAX_KB: Final = 24 * 1024


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    log_dir = tmp_path_factory.mktemp("flood")
    with one_server(
        module_bare_db_url, log_dir, GIFTWAVE_LIVE_RING_MAX_BYTES=str(RING_MAX_BYTES)
    ) as served:
        yield served


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _ws(server: ServerProcess, stream: str) -> str:
    return server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"


async def _flood(url: str, real_id: str, seed: int) -> int:
    """Moderation commands as fast as the socket takes them, never reading an answer: how
    many were sent before the server closed the socket (or the budget ran out)."""
    sent = 0
    with contextlib.suppress(websockets.ConnectionClosed):
        async with websockets.connect(url, max_queue=4, close_timeout=0.5) as ws:
            for n in range(COMMANDS_PER_SOCKET):
                if n % 3 == 0:
                    command: dict[str, Any] = {"cmd": "delete_message", "message_id": real_id}
                elif n % 3 == 1:
                    command = {"cmd": "delete_message", "message_id": secrets.token_hex(8)}
                else:
                    command = {"cmd": "mute", "user_id": seed * 1_000_000 + n, "minutes": 5}
                await ws.send(orjson.dumps({"id": n, **command}).decode())
                sent += 1
    return sent


async def _watch(url: str, frames: list[str], stop: asyncio.Event) -> None:
    async with websockets.connect(url, max_size=None) as ws:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                frames.append(str(await asyncio.wait_for(ws.recv(), 0.2)))


async def test_a_moderation_flood_stays_small_for_viewers_and_the_server(
    server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        _, creator = await person(http, "creator")
        _, viewer = await person(http, "viewer")
        stream = await go_live(http, creator, "flood")
        url = _ws(server, stream)
        frames: list[str] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(_watch(url, frames, stop))
        async with websockets.connect(await as_user(http, url, viewer)) as viewer_ws:
            chatter = Client(viewer_ws)
            await chatter.recv()
            said = await chatter.command(id="c", cmd="chat", text="spam spam spam")
            real_id = said["result"]["message_id"]
        await asyncio.sleep(0.3)
        before_kb = _rss_kb(server.pid)
        urls = [await as_user(http, url, creator) for _ in range(SOCKETS)]
        sent = await asyncio.wait_for(
            asyncio.gather(*(_flood(u, real_id, n + 1) for n, u in enumerate(urls))),
            FLOOD_S * 4,
        )
        await asyncio.sleep(1.0)  # the last ticks go out
        after_kb = _rss_kb(server.pid)
        stop.set()
        await watcher

    assert sum(sent) >= SOCKETS * 100, sent  # the server read a flood, whatever it refused
    sizes = [len(f.encode()) for f in frames]
    assert max(sizes) <= FRAME_MAX_BYTES, max(sizes)
    events = [e for f in frames for e in orjson.loads(f)["events"]]
    deleted = [m for e in events if e["type"] == "chat_deleted" for m in e["message_ids"]]
    assert deleted == [real_id]  # said once; unknown ids never reach a viewer
    muted = [e for e in events if e["type"] == "muted"]
    assert all(len(e["mutes"]) <= 100 for e in muted)
    assert len(muted) <= len(frames)  # one compact event per tick, not one per command
    assert after_kb - before_kb <= RSS_GROWTH_MAX_KB, (before_kb, after_kb)


async def test_big_chat_lines_push_old_frames_out_of_a_ring_bounded_in_bytes(
    server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        _, creator = await person(http, "creator")
        stream = await go_live(http, creator, "ring")
        url = _ws(server, stream)
        async with websockets.connect(url) as watch_ws:
            watcher = Client(watch_ws)
            await watcher.recv()
            people = [(await person(http, "viewer"))[1] for _ in range(4)]
            for n in range(3):
                for i, token in enumerate(people):  # 200 characters a tick: ~700 bytes kept
                    text = f"{n}{i}".ljust(200, "x")
                    async with websockets.connect(await as_user(http, url, token)) as ws:
                        chatter = Client(ws)
                        await chatter.recv()
                        said = await chatter.command(id=1, cmd="chat", text=text)
                        assert said["result"]["sent"], said
                    await watcher.until(lambda e, t=text: e["type"] == "chat" and e["text"] == t)
            chat_seqs = [
                f["seq"] for f in watcher.frames if any(e["type"] == "chat" for e in f["events"])
            ]
            epoch = watcher.frames[-1]["epoch"]
            last = watcher.frames[-1]["seq"]
    assert len(chat_seqs) == 12
    assert last < 600  # the ring's frame count was never the limit here
    # The first chat frames are gone from a 4 KiB ring: a resume from before them gets a snapshot.
    async with websockets.connect(f"{url}?since={chat_seqs[0] - 1}&epoch={epoch}") as old:
        assert (
            orjson.loads(await asyncio.wait_for(old.recv(), 5))["events"][0]["type"] == "snapshot"
        )
    # The newest ones are still there: a resume just before them gets exactly those.
    async with websockets.connect(f"{url}?since={chat_seqs[-2] - 1}&epoch={epoch}") as recent:
        missed = [
            orjson.loads(await asyncio.wait_for(recent.recv(), 5))
            for _ in range(last - chat_seqs[-2] + 1)
        ]
    assert [f["seq"] for f in missed] == list(range(chat_seqs[-2], last + 1))
    assert all(e["type"] != "snapshot" for f in missed for e in f["events"])

"""The same room, fed through each broker: memory (one process) and Redis (several nodes).
Every node's copy of the room sees the same events in the same order."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from giftwave.live.events import GiftCommitted, Liked, plain
from giftwave.realtime.broker import Broker, MemoryBroker, RedisBroker
from giftwave.realtime.hub import Hub
from giftwave.realtime.sockets import ListSink

REDIS_URL = os.environ.get("GIFTWAVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _redis_or_fail() -> None:
    client = aioredis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        await client.ping()
    except Exception as exc:  # a missing backend fails the run, never skips it
        pytest.fail(f"Redis is required and unreachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[list[tuple[Hub, Broker]]]:
    """Hubs that share one room: one for memory://, two nodes for redis://."""
    made: list[tuple[Hub, Broker]] = []
    if request.param == "memory":
        broker: Broker = MemoryBroker()
        hub = Hub(broker=broker, combo_quiet_ms=200)
        await broker.start(hub)
        made.append((hub, broker))
    else:
        await _redis_or_fail()
        for _ in range(2):
            broker = RedisBroker(REDIS_URL)
            hub = Hub(broker=broker, combo_quiet_ms=200)
            await broker.start(hub)
            made.append((hub, broker))
    yield made
    for _, broker in made:
        await broker.stop()


def _gift(n: int, sender: int, gift: str = "rose") -> GiftCommitted:
    return GiftCommitted(
        send_id=f"g{n}",
        sender_id=sender,
        sender=f"u{sender}",
        gift_id=gift,
        count=1,
        coins=1,
        diamonds=1,
        comboable=gift == "rose",
        at_us=1_000 * n,
    )


def _gift_events(frames: list[str]) -> list[tuple[Any, ...]]:
    return [
        (e["combo_id"], e["sender_id"], e["count"], e["final"])
        for f in frames
        for e in orjson.loads(f)["events"]
        if e["type"] == "gift"
    ]


async def test_every_node_sees_the_same_gifts_in_the_same_order(
    nodes: list[tuple[Hub, Broker]],
) -> None:
    room = "st_" + secrets.token_hex(6)
    watchers = [(hub, ListSink()) for hub, _ in nodes]
    for hub, sink in watchers:
        await hub.subscribe(room, sink)
    received: list[list[str]] = [[] for _ in watchers]
    # Gifts published from every node in turn: lions arrive once, roses combo per sender.
    for n in range(60):
        _, broker = nodes[n % len(nodes)]
        await broker.publish(room, _gift(n, sender=n % 3, gift="lion" if n % 10 == 0 else "rose"))
    await broker.publish(room, Liked(count=7, user_id=None, handle=""))
    deadline = asyncio.get_running_loop().time() + 5
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        for (hub, sub), got in zip(watchers, received, strict=True):
            hub.tick_now()
            got.extend(sub.take())
        leaderboards = [hub.channel(room).room.coins for hub, _ in watchers]
        if all(c == 60 for c in leaderboards):
            break
    await asyncio.sleep(0.3)  # past the combo window: every combo ends, on every node
    for (hub, sub), got in zip(watchers, received, strict=True):
        hub.tick_now()
        got.extend(sub.take())
    first = [e for e in _gift_events(received[0]) if e[3]]
    lions = {f"g{n}" for n in range(0, 60, 10)}
    assert len([e for e in first if e[0] in lions]) == 6  # a Lion arrives once, final
    roses = [e for e in first if e[0] not in lions]
    assert sorted((e[1], e[2]) for e in roses) == [(0, 18), (1, 18), (2, 18)]  # one combo each
    for got in received[1:]:
        assert [e for e in _gift_events(got) if e[3]] == first  # same events, same order
    boards = [plain(hub.channel(room).room.snapshot())["leaderboard"] for hub, _ in watchers]
    assert all(b == boards[0] for b in boards)
    assert boards[0]["coins"] == 60
    assert all(hub.channel(room).room.likes == 7 for hub, _ in watchers)


async def test_a_redis_node_that_joins_late_rebuilds_the_room() -> None:
    """Only Redis keeps a room's history; memory:// has one copy of each room, by design."""
    await _redis_or_fail()
    nodes = []
    for _ in range(2):
        broker = RedisBroker(REDIS_URL)
        hub = Hub(broker=broker)
        await broker.start(hub)
        nodes.append((hub, broker))
    try:
        await _late_join(nodes)
    finally:
        for _, broker in nodes:
            await broker.stop()


async def _late_join(nodes: list[tuple[Hub, RedisBroker]]) -> None:
    room = "st_" + secrets.token_hex(6)
    (hub_a, broker_a), (hub_b, _) = nodes
    await hub_a.subscribe(room, ListSink())
    for n in range(25):
        await broker_a.publish(room, _gift(n, sender=n % 5))
    deadline = asyncio.get_running_loop().time() + 5
    while hub_a.channel(room).room.coins < 25:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    await hub_b.subscribe(room, ListSink())  # B had never seen this room
    a = plain(hub_a.channel(room).room.snapshot())["leaderboard"]
    b = plain(hub_b.channel(room).room.snapshot())["leaderboard"]
    assert a == b
    assert b["coins"] == 25


async def test_viewer_counts_are_summed_over_live_nodes(
    nodes: list[tuple[Hub, Broker]],
) -> None:
    room = "st_" + secrets.token_hex(6)
    (_, first), (_, second) = nodes[0], nodes[-1]
    if first is second:  # memory://: one process, its own sockets are all there are
        assert await first.count_viewers({room: 3}) == {room: 3}
        return
    assert await first.count_viewers({room: 3}) == {room: 3}
    assert await second.count_viewers({room: 2}) == {room: 5}
    assert await first.count_viewers({room: 4}) == {room: 6}  # a node's new count replaces
    # A node that died long ago stops counting.
    client = aioredis.from_url(REDIS_URL)
    try:
        stale_ms = int(time.time() * 1000) - 60_000
        await client.hset(f"giftwave:viewers:{room}", "dead-node", f"100:{stale_ms}")
    finally:
        await client.aclose()
    assert await second.count_viewers({room: 2}) == {room: 6}

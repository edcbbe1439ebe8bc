"""Live rooms through faults, against real `giftwave serve` processes: a node killed mid-stream
(viewers resume on another node), Redis restarted under load (nodes rebuild their rooms from
the database), a one-process restart (the room comes back from the database); and, in
process, a retried gift told to the room again and counted once.

What a viewer saw is judged by the client rule of docs/protocol.md ("Resuming"): a final gift
event, or an entry of a snapshot's ``recent_gifts``, is shown unless its ``combo_id`` was shown
already. Every committed gift must be shown exactly once, in a combo of the right count.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import pytest
import websockets
from economy_client import ADMIN as ECONOMY_ADMIN
from economy_client import AppFactory, economy_app, register
from liveclient import person
from redisproc import PrivateRedis
from serverproc import (
    ADMIN_TOKEN,
    ServerGroup,
    ServerProcess,
    assert_ledger_verify_clean,
    giftwave_env,
    migrate,
)
from sqlalchemy import select

from giftwave.api.state import app_services
from giftwave.db.engine import make_engine
from giftwave.db.tables import gift_sends, transfers
from giftwave.db.urls import DatabaseUrl
from giftwave.economy.gifting import GiftSent
from giftwave.realtime.sockets import ListSink

__all__ = ["economy_app"]

ADMIN: Final = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
COMBO_QUIET_MS: Final = 600
COMBO_SETTLE_S: Final = 1.0  # api/app.py's COMBO_SETTLE_MS
TOPUP_COINS: Final = 10_000_000
GIFT_PAUSE_S: Final = 0.01  # each gifter, between gifts: a steady storm, not a flood
RETRIES: Final = 50
RECONNECT_DELAY_S: Final = 1.0
SETTLE_TIMEOUT_S: Final = 25.0


def _env(db: DatabaseUrl, **extra: str) -> dict[str, str]:
    env = giftwave_env(db)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        GIFTWAVE_LIVE_COMBO_QUIET_MS=str(COMBO_QUIET_MS),
        GIFTWAVE_GIFT_RATE_PER_S="0",
        GIFTWAVE_GIFT_DAILY_SPEND_MAX_COINS="0",
    )
    env.update(extra)
    migrate(env)
    return env


def _ws_url(server: ServerProcess, stream_id: str) -> str:
    return server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream_id}/ws"


def _gift_of(n: int) -> str:
    """A gifter's n-th gift: long Rose and Panda combos in turn, now and then a Corgi (which
    never combos: final at once)."""
    if n % 40 == 20:
        return "corgi"
    return "rose" if (n // 40) % 2 == 0 else "panda"


@dataclass(frozen=True, slots=True)
class Committed:
    """The stream's committed, unreversed gifts, read from the database."""

    sends: dict[str, tuple[int, str, int, int]]  # send_id → (sender, gift, count, coins)
    coins: int
    diamonds: int

    def by_sender(self) -> dict[int, int]:
        coins: Counter[int] = Counter()
        for sender, _, _, send_coins in self.sends.values():
            coins[sender] += send_coins
        return dict(coins)

    def counts(self) -> Counter[tuple[int, str]]:
        counts: Counter[tuple[int, str]] = Counter()
        for sender, gift, count, _ in self.sends.values():
            counts[sender, gift] += count
        return counts


def committed(db: DatabaseUrl, stream_id: str) -> Committed:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(gift_sends)
                .select_from(gift_sends.join(transfers, transfers.c.id == gift_sends.c.transfer_id))
                .where(gift_sends.c.stream_id == stream_id, gift_sends.c.reversed.is_(False))
            ).all()
    finally:
        engine.dispose()
    return Committed(
        sends={
            r.transfer_id.removesuffix(":c"): (int(r.sender_id), r.gift_id, r.count, r.coins)
            for r in rows
        },
        coins=sum(int(r.coins) for r in rows),
        diamonds=sum(int(r.diamonds) for r in rows),
    )


@dataclass
class Shown:
    gifts: dict[str, dict[str, Any]]  # combo id → its final event, as first shown
    conflicts: list[Any]  # combos reported finished twice, differently: there must be none
    from_snapshots: int  # combos first shown from a snapshot's recent gifts


def shown_gifts(frames: list[dict[str, Any]]) -> Shown:
    """The finished gifts a client following the resume rule shows."""
    shown: dict[str, dict[str, Any]] = {}
    conflicts = []
    from_snapshots = 0
    for frame in frames:
        for event in frame["events"]:
            if event["type"] == "snapshot":
                finals = event["recent_gifts"]
            elif event["type"] == "gift" and event["final"]:
                finals = [event]
            else:
                continue
            for gift in finals:
                first = shown.setdefault(gift["combo_id"], gift)
                if _same(first) != _same(gift):
                    conflicts.append((first, gift))
                elif event["type"] == "snapshot":
                    from_snapshots += 1
    return Shown(shown, conflicts, from_snapshots)


def _same(gift: dict[str, Any]) -> dict[str, Any]:
    """A finished gift as every node reports it: ``n`` is one node's short number."""
    return {k: v for k, v in gift.items() if k != "n"}


def shown_counts(shown: dict[str, dict[str, Any]]) -> Counter[tuple[int, str]]:
    counts: Counter[tuple[int, str]] = Counter()
    for gift in shown.values():
        counts[gift["sender_id"], gift["gift_id"]] += gift["count"]
    return counts


def last_leaderboard(frames: list[dict[str, Any]]) -> dict[str, Any]:
    boards = [
        e if e["type"] == "leaderboard" else e["leaderboard"]
        for f in frames
        for e in f["events"]
        if e["type"] in ("leaderboard", "snapshot")
    ]
    return boards[-1]


def assert_board_is(board: dict[str, Any], db: Committed) -> None:
    assert (board["coins"], board["diamonds"]) == (db.coins, db.diamonds)
    top = sorted(db.by_sender().items(), key=lambda kv: -kv[1])[:10]
    assert {e["user_id"]: e["coins"] for e in board["top"]} == dict(top)
    assert [e["coins"] for e in board["top"]] == [coins for _, coins in top]


class Viewer:
    """An anonymous viewer: every frame it got. When its node goes away it resumes on the next
    one with ``since`` and ``epoch``, a second later, as a client backing off does."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.frames: list[dict[str, Any]] = []
        self.sessions = 0

    async def watch(self, stop: asyncio.Event) -> None:
        for url in self.urls:
            if self.frames:
                await asyncio.sleep(RECONNECT_DELAY_S)
                last = self.frames[-1]
                url += f"?since={last['seq']}&epoch={last['epoch']}"
            try:
                async with websockets.connect(url, open_timeout=10) as ws:
                    self.sessions += 1
                    while not stop.is_set():
                        try:
                            text = await asyncio.wait_for(ws.recv(), 0.2)
                        except TimeoutError:
                            continue
                        self.frames.append(orjson.loads(text))
                    return
            except (websockets.WebSocketException, OSError):
                continue  # that node is gone: the next one
        raise AssertionError("every node the viewer knew is gone")

    def snapshots(self, after_frame: int = 0) -> list[dict[str, Any]]:
        return [
            e for f in self.frames[after_frame:] for e in f["events"] if e["type"] == "snapshot"
        ]


@dataclass
class Gifter:
    """One viewer sending gifts over REST, each acknowledged before the next; a gift whose
    node died under it is sent again, the same key and fields, to the next node."""

    user_id: int
    token: str
    nodes: list[str]
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)  # key → receipt
    resent: list[str] = field(default_factory=list)
    n: int = 0

    async def send(self, http: httpx.AsyncClient, stream_id: str, gift_id: str) -> None:
        key = f"u{self.user_id}-{self.n}"
        self.n += 1
        body = {"gift_id": gift_id, "idempotency_key": key}
        headers = {"Authorization": f"Bearer {self.token}"}
        for _ in range(RETRIES):
            try:
                r = await http.post(
                    f"{self.nodes[0]}/v1/streams/{stream_id}/gifts", json=body, headers=headers
                )
            except httpx.TransportError:
                if len(self.nodes) > 1:
                    self.nodes.pop(0)  # that node died: the next one, as a client retries
                self.resent.append(key)
                await asyncio.sleep(0.05)
                continue
            assert r.status_code == 201, r.text
            self.acked[key] = r.json()
            return
        raise AssertionError(f"gift {key} was never acknowledged")

    async def storm(self, stream_id: str, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=15, trust_env=False) as http:
            while not stop.is_set():
                await self.send(http, stream_id, _gift_of(self.n))
                await asyncio.sleep(GIFT_PAUSE_S)


async def _open_stage(http: httpx.AsyncClient, gifters: int) -> tuple[str, list[tuple[int, str]]]:
    _, creator_token = await person(http, "creator")
    r = await http.post(
        "/v1/streams",
        json={"title": "faults"},
        headers={"Authorization": f"Bearer {creator_token}"},
    )
    assert r.status_code == 201, r.text
    stream_id = str(r.json()["id"])
    people = []
    for _ in range(gifters):
        user_id, token = await person(http, "viewer")
        r = await http.post(
            f"/v1/admin/users/{user_id}/coins",
            json={"coins": TOPUP_COINS, "idempotency_key": "faults"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        people.append((user_id, token))
    return stream_id, people


async def _until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


def _assert_saw_every_gift_once(viewer: Viewer, db: Committed) -> None:
    shown = shown_gifts(viewer.frames)
    assert shown.conflicts == [], "a combo was reported finished twice, differently"
    assert set(shown.gifts) <= set(db.sends), "a combo that is not a committed gift"
    assert shown_counts(shown.gifts) == db.counts()
    assert sum(g["coins"] for g in shown.gifts.values()) == db.coins


@pytest.mark.parametrize("bare_db_url", ["postgresql"], indirect=True)
async def test_viewers_resume_on_another_node_when_theirs_is_killed(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with PrivateRedis(tmp_path) as redis:
        env = _env(bare_db_url, GIFTWAVE_BROKER_URL=redis.url)
        with ServerGroup(tmp_path, env) as servers:
            a, b = servers.start("a", "b")
            async with httpx.AsyncClient(base_url=b.base_url, timeout=30) as http:
                stream_id, people = await _open_stage(http, gifters=8)
            gifters = [
                Gifter(user_id, token, [a.base_url, b.base_url] if i % 2 else [b.base_url])
                for i, (user_id, token) in enumerate(people)
            ]
            viewers = [Viewer([_ws_url(a, stream_id), _ws_url(b, stream_id)]) for _ in range(3)]
            watching, storming = asyncio.Event(), asyncio.Event()
            watch = [asyncio.create_task(v.watch(watching)) for v in viewers]
            await _until(lambda: all(v.frames for v in viewers), 10, "the first snapshots")
            storm = [asyncio.create_task(g.storm(stream_id, storming)) for g in gifters]
            try:
                started = time.monotonic()
                await _until(
                    lambda: (
                        sum(len(g.acked) for g in gifters) >= 300 or time.monotonic() - started > 4
                    ),
                    10,
                    "gifts before the kill",
                )
                a.kill()  # mid-stream: gifts in flight, combos open, viewers watching
                assert a.returncode == -signal.SIGKILL
                await asyncio.sleep(1.5)  # gifts go on, to node B
            finally:
                storming.set()
                await asyncio.wait_for(asyncio.gather(*storm), 60)
            db = committed(bare_db_url, stream_id)
            acked = {g.acked[k]["send_id"] for g in gifters for k in g.acked}
            assert acked == set(db.sends), "every gift was acknowledged, at last; each is stored"
            assert any(g.resent for g in gifters), "the kill landed between gifts, not in them"

            def everything_shown() -> bool:
                return all(
                    shown_counts(shown_gifts(v.frames).gifts) == db.counts() for v in viewers
                )

            try:
                await _until(everything_shown, SETTLE_TIMEOUT_S, "every gift on every screen")
            finally:
                watching.set()
                await asyncio.wait_for(asyncio.gather(*watch), 30)
            for viewer in viewers:
                assert viewer.sessions == 2, "the viewer did not resume on node B"
                _assert_saw_every_gift_once(viewer, db)
                assert_board_is(last_leaderboard(viewer.frames), db)
                # Away for a second: what ended meanwhile came in the snapshot's recent gifts.
                assert shown_gifts(viewer.frames).from_snapshots > 0
            shown = shown_gifts(viewers[0].frames)
            print(
                f"{len(db.sends)} gifts, {sum(len(g.resent) for g in gifters)} sent again after"
                f" the kill; {len(shown.gifts)} finished gifts shown per viewer,"
                f" {shown.from_snapshots} of them from the snapshot"
            )
        assert_ledger_verify_clean(env)


@pytest.mark.parametrize("bare_db_url", ["postgresql"], indirect=True)
async def test_nodes_rebuild_their_rooms_when_redis_restarts_under_load(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with PrivateRedis(tmp_path) as redis:
        env = _env(bare_db_url, GIFTWAVE_BROKER_URL=redis.url)
        with ServerGroup(tmp_path, env) as servers:
            a, b = servers.start("a", "b")
            async with httpx.AsyncClient(base_url=a.base_url, timeout=30) as http:
                stream_id, people = await _open_stage(http, gifters=6)
            gifters = [
                Gifter(user_id, token, [(a, b)[i % 2].base_url])
                for i, (user_id, token) in enumerate(people)
            ]
            viewers = [Viewer([_ws_url(node, stream_id)]) for node in (a, b, a, b)]
            watching, storming = asyncio.Event(), asyncio.Event()
            watch = [asyncio.create_task(v.watch(watching)) for v in viewers]
            try:
                await _until(lambda: all(v.frames for v in viewers), 10, "the first snapshots")
                storm = [asyncio.create_task(g.storm(stream_id, storming)) for g in gifters]
                try:
                    await asyncio.sleep(1.5)
                    redis.kill()  # under load: publishes fail, reads fail, the data is gone
                    await asyncio.sleep(1.0)  # gifts go on, acknowledged: the ledger has them
                finally:
                    storming.set()
                    await asyncio.wait_for(asyncio.gather(*storm), 60)
                db = committed(bare_db_url, stream_id)
                acked = {g.acked[k]["send_id"] for g in gifters for k in g.acked}
                assert acked == set(db.sends), "an acknowledged gift is missing from the ledger"
                marks = [len(v.frames) for v in viewers]
                redis.start()  # the same port, empty

                def rebuilt() -> bool:
                    return all(v.snapshots(mark) for v, mark in zip(viewers, marks, strict=True))

                await _until(rebuilt, SETTLE_TIMEOUT_S, "a snapshot after the restart")
                for viewer, mark in zip(viewers, marks, strict=True):
                    for snapshot in viewer.snapshots(mark):
                        assert_board_is(snapshot["leaderboard"], db)

                # After the restart, gifts reach the viewers of both nodes again.
                async with httpx.AsyncClient(timeout=15, trust_env=False) as http:
                    for gifter in gifters:
                        await gifter.send(http, stream_id, "corgi")
                after = committed(bare_db_url, stream_id)
                new = set(after.sends) - set(db.sends)
                assert len(new) == len(gifters)

                def arrived() -> bool:
                    return all(new <= set(shown_gifts(v.frames).gifts) for v in viewers)

                await _until(arrived, SETTLE_TIMEOUT_S, "the gifts sent after the restart")
                await _until(
                    lambda: all(
                        last_leaderboard(v.frames)["coins"] == after.coins for v in viewers
                    ),
                    SETTLE_TIMEOUT_S,
                    "the leaderboards",
                )
                for viewer in viewers:
                    assert_board_is(last_leaderboard(viewer.frames), after)
                    assert viewer.sessions == 1  # nobody was disconnected by the restart
            finally:
                watching.set()
                await asyncio.wait_for(asyncio.gather(*watch), 30)
            print(f"{len(db.sends)} gifts before the restart was over")
        assert_ledger_verify_clean(env)


@pytest.mark.parametrize("bare_db_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_restarted_process_shows_the_committed_room(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    """memory:// keeps rooms in the process: after kill -9 the totals, the top gifters and the
    recent gifts come back from the database, reversed gifts left out; a retried gift is not
    counted twice."""
    quiet_s = 2.0  # a slow machine's pause between two Roses must not split their combo
    env = _env(bare_db_url, GIFTWAVE_LIVE_COMBO_QUIET_MS=str(int(quiet_s * 1000)))
    with ServerGroup(tmp_path, env) as servers:
        [first] = servers.start("first")
        async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as http:
            stream_id, people = await _open_stage(http, gifters=3)
            gifters = [Gifter(user_id, token, [first.base_url]) for user_id, token in people]
            plan = [
                (0, "rose"),
                (0, "rose"),
                (1, "corgi"),
                (0, "rose"),
                (2, "panda"),
                (1, "panda"),
                (2, "panda"),
                (2, "corgi"),  # reversed below
                (1, "panda"),
            ]
            for who, gift in plan:
                await gifters[who].send(http, stream_id, gift)
            reversed_id = gifters[2].acked[f"u{gifters[2].user_id}-2"]["send_id"]
            r = await http.post(f"/v1/admin/gift-sends/{reversed_id}/reverse", headers=ADMIN)
            assert r.status_code == 200, r.text
        await asyncio.sleep(quiet_s + COMBO_SETTLE_S + 0.3)  # every combo ended before the kill
        first.kill()
        [second] = servers.start("second")
        db = committed(bare_db_url, stream_id)
        assert len(db.sends) == len(plan) - 1
        async with websockets.connect(_ws_url(second, stream_id)) as ws:
            snapshot = orjson.loads(await asyncio.wait_for(ws.recv(), 5))["events"][0]
        assert snapshot["type"] == "snapshot"
        assert_board_is(snapshot["leaderboard"], db)
        recent = [(g["sender_id"], g["gift_id"], g["count"]) for g in snapshot["recent_gifts"]]
        ids = [g.user_id for g in gifters]
        assert recent == [
            (ids[1], "corgi", 1),
            (ids[0], "rose", 3),
            (ids[2], "panda", 2),
            (ids[1], "panda", 2),
        ]
        assert snapshot["combos"] == []
        assert shown_counts(shown_gifts([{"events": [snapshot]}]).gifts) == db.counts()

        # The client that never heard back sends again: the same gift, not a second one.
        async with httpx.AsyncClient(base_url=second.base_url, timeout=30) as http:
            for gifter in gifters:
                gifter.nodes = [second.base_url]
            gifters[0].n = 0
            await gifters[0].send(http, stream_id, "rose")
            async with websockets.connect(_ws_url(second, stream_id)) as ws:
                await gifters[1].send(http, stream_id, "corgi")
                after = committed(bare_db_url, stream_id)
                frames = []

                def board_shows_it() -> bool:  # boards go out at most twice a second
                    return any(
                        e["type"] == "leaderboard" and e["coins"] == after.coins
                        for f in frames
                        for e in f["events"]
                    )

                with contextlib.suppress(TimeoutError):
                    while not board_shows_it():
                        frames.append(orjson.loads(await asyncio.wait_for(ws.recv(), 5)))
        assert len(after.sends) == len(db.sends) + 1
        assert_board_is(last_leaderboard(frames), after)


async def test_a_retried_gift_is_told_again_and_counted_once(economy_app: AppFactory) -> None:
    """The process that commits a gift may die before it tells the room: a retry with the same
    key tells it (again), and the room counts the gift once."""
    async with economy_app(gift_rate_per_s=0) as client:
        viewer = await register(client)
        creator = await register(client, "creator")
        r = await client.post(
            f"/v1/admin/users/{viewer.id}/coins",
            json={"coins": 1000, "idempotency_key": "told"},
            headers=ECONOMY_ADMIN,
        )
        assert r.status_code == 200, r.text
        stream = await creator.go_live()
        app: Any = client.app  # type: ignore[attr-defined]
        await app_services(app).hub.subscribe(stream, ListSink())  # someone watches: the room stays
        told: list[GiftSent] = []

        async def tell(sent: GiftSent, _handle: str, _comboable: bool) -> None:
            told.append(sent)

        app_services(app).economy.gifting.add_observer(tell)
        first = await viewer.gift(stream, "panda", key="once")
        assert first.status_code == 201, first.text
        again = await viewer.gift(stream, "panda", key="once")
        assert again.json() == first.json()
        r = await creator.post(f"/v1/streams/{stream}/end")
        assert r.status_code == 200, r.text
        late = await viewer.gift(stream, "panda", key="once")  # refused now, but it went
        assert late.json() == first.json()
        assert [t.send_id for t in told] == [first.json()["send_id"]] * 3
        assert len({t.created_at_us for t in told}) == 1  # the same gift, the same time
        room = app_services(app).hub.channel(stream).room
        assert (room.coins, room.diamonds) == (5, 5)
        assert room.snapshot().leaderboard.top[0].coins == 5

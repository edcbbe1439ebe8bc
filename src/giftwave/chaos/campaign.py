"""One campaign: a scratch database, a private Redis, N nodes, the workload, the faults on a
schedule, then the clients settle what they do not know and the checker reads the database.

Faults, as fractions of the run (``--seconds``):

    0.20  kill -9 node 0 (started again at once, on the same port: a crash and a restart)
    0.45  SIGSTOP node 1 for 5 s, then SIGCONT (a node that hangs, then comes back)
    0.65  the private Redis killed and started again, empty
    0.80  PostgreSQL restarted (only with ``restart_postgres``: the server is shared)

Throughout: a creator's webhook endpoint answers 500, another never answers; a viewer stops
reading its socket. Unavailability of a fault: the longest time, from the fault until 15 s
after it ended, in which no client had a gift acknowledged (the baseline gap is reported too).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import secrets
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from giftwave.bench.scratch import scratch_database
from giftwave.chaos.checker import Findings, check
from giftwave.chaos.processes import Node, PrivateRedis, restart_postgres
from giftwave.chaos.workload import (
    Cluster,
    Journal,
    Op,
    Outcome,
    Person,
    Screen,
    SocketGifter,
    Webhooks,
    call,
    deliver_webhooks,
    failing_endpoint,
    gift_rest,
    payout,
    register,
    resend_gift,
    stop_reading,
    topup,
    watch,
)
from giftwave.db.engine import make_engine, migrate

ADMIN_TOKEN: Final = "chaos-admin-" + secrets.token_hex(8)
PAUSE_S: Final = 5.0
RECOVERY_WINDOW_S: Final = 15.0
GIFT_PAUSE_S: Final = (0.4, 0.9)  # between one viewer's gifts: a few gifts/s per room
LOW_COINS: Final = 3_000
PAYOUT_DIAMONDS: Final = 150
LOST_AFTER_S: Final = 20.0  # a viewer away this long no longer counts as subscribed


@dataclass(slots=True)
class Fault:
    name: str
    at_s: float
    ended_s: float = 0.0
    unavailable_s: float = 0.0
    first_ack_after_s: float = 0.0


@dataclass(slots=True)
class Plan:
    seconds: float
    nodes: int = 2
    viewers: int = 6
    rooms: int = 2
    restart_postgres: bool = False
    seed: int = 20
    faults: list[Fault] = field(default_factory=list)


def node_env(db_url: str, redis_url: str, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTWAVE_")}
    env.update(
        {
            "GIFTWAVE_DATABASE_URL": db_url,
            "GIFTWAVE_BROKER_URL": redis_url,
            "GIFTWAVE_ADMIN_TOKEN": ADMIN_TOKEN,
            "GIFTWAVE_SANDBOX_WEBHOOK_SECRET": secret,
            "GIFTWAVE_PASSWORD_TIME_COST": "1",
            "GIFTWAVE_PASSWORD_MEMORY_KIB": "8",
            # Every account of the campaign signs up from 127.0.0.1.
            "GIFTWAVE_REGISTER_ADDRESS_FREE": "100000",
            "GIFTWAVE_PAYOUT_MIN_CENTS": "1",
            # The failing webhook endpoints are the campaign's own, on 127.0.0.1.
            "GIFTWAVE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
            "GIFTWAVE_WEBHOOK_TIMEOUT_S": "1",
            "GIFTWAVE_WEBHOOK_RETRY_BASE_MS": "200",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def run_campaign(database_url: str, plan: Plan, log_dir: Path | None = None) -> dict[str, Any]:
    """Run the whole campaign; the summary as plain JSON-ready values."""
    # One line per client request would bury the nodes' own warnings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="giftwave-chaos-") as tmp:
        logs = log_dir or Path(tmp)
        with scratch_database(database_url, "chaos") as db:
            engine = make_engine(db)
            migrate(engine)
            engine.dispose()
            redis = PrivateRedis(logs)
            redis.start()
            secret = secrets.token_hex(16)
            env = node_env(db.url, redis.url, secret)
            nodes = [Node(f"node{i}", env, logs) for i in range(plan.nodes)]
            try:
                for node in nodes:
                    node.start()
                world = asyncio.run(_storm(plan, nodes, redis, secret))
            except BaseException:
                for node in nodes:
                    print(f"--- {node.name} ---\n{node.log_tail()}")
                raise
            finally:
                for node in nodes:
                    node.stop()
                redis.kill()
            engine = make_engine(db)
            try:
                with engine.connect() as conn:
                    findings = check(
                        conn,
                        world.journal.ops,
                        world.viewers,
                        world.creators,
                        world.opening,
                        world.screens,
                    )
            finally:
                engine.dispose()
    return summary(plan, world, findings)


@dataclass(slots=True)
class World:
    journal: Journal
    viewers: list[Person]
    creators: list[Person]
    opening: dict[int, int]
    screens: list[Screen]
    slow: Screen
    storm_end_s: float


async def _storm(plan: Plan, nodes: list[Node], redis: PrivateRedis, secret: str) -> World:
    rng = random.Random(plan.seed)
    cluster = Cluster([n.base for n in nodes])
    journal = Journal()
    hooks = Webhooks(secret)
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=2.0, limits=limits) as client:
        tag = secrets.token_hex(3)
        creators = [
            await register(client, cluster, journal, f"chaosc{tag}{i}", "creator")
            for i in range(plan.rooms)
        ]
        rooms = []
        for c in creators:
            r = await call(
                client,
                cluster,
                journal,
                "POST",
                "/v1/streams",
                body={"title": "chaos"},
                headers={"Authorization": f"Bearer {c.token}"},
            )
            r.raise_for_status()
            rooms.append(str(r.json()["id"]))
        sinks = [await failing_endpoint("fail"), await failing_endpoint("hang")]
        for c, sink in zip(creators, sinks, strict=False):
            port = sink.sockets[0].getsockname()[1]
            await call(
                client,
                cluster,
                journal,
                "POST",
                "/v1/creators/me/webhooks",
                body={"url": f"http://127.0.0.1:{port}/hook", "events": ["gift"]},
                headers={"Authorization": f"Bearer {c.token}"},
            )
        viewers = [
            await register(client, cluster, journal, f"chaosv{tag}{i}", "viewer")
            for i in range(plan.viewers)
        ]
        opening: dict[int, int] = {}
        for v in viewers:
            r = await call(
                client,
                cluster,
                journal,
                "GET",
                "/v1/me/wallet",
                headers={"Authorization": f"Bearer {v.token}"},
            )
            opening[v.user_id] = int(r.json()["coins"])
            await topup(client, cluster, journal, v, hooks)
        await deliver_webhooks(client, cluster, journal, hooks, rng)

        stop = asyncio.Event()
        screens = [Screen(room) for room in rooms for _ in range(2)]
        slow = Screen(rooms[0])
        watchers = [
            asyncio.create_task(watch(cluster, s.stream_id, s, stop, LOST_AFTER_S)) for s in screens
        ]
        watchers.append(asyncio.create_task(stop_reading(nodes[0].base, rooms[0], slow, stop)))
        await asyncio.sleep(1.0)  # every viewer in its room before the first gift

        storm = asyncio.Event()
        t_start = journal.now()
        tasks = [
            asyncio.create_task(
                _gifter(
                    client,
                    cluster,
                    journal,
                    hooks,
                    v,
                    rooms[i % len(rooms)],
                    i % 2 == 1,
                    storm,
                    rng,
                )
            )
            for i, v in enumerate(viewers)
        ]
        tasks.append(
            asyncio.create_task(_webhook_pump(client, cluster, journal, hooks, storm, rng))
        )
        tasks.append(asyncio.create_task(_cashier(client, cluster, journal, creators, storm)))
        plan.faults = await _faults(plan, nodes, redis, journal, t_start)
        storm.set()
        await asyncio.gather(*tasks)
        storm_end_s = journal.now()

        await _settle(client, cluster, journal, hooks, viewers, rooms, rng)
        await asyncio.sleep(3.0)  # the last gifts reach every screen
        stop.set()
        await asyncio.gather(*watchers)
        for sink in sinks:
            sink.close()
    return World(journal, viewers, creators, opening, screens, slow, storm_end_s)


async def _gifter(
    client: httpx.AsyncClient,
    cluster: Cluster,
    journal: Journal,
    hooks: Webhooks,
    who: Person,
    room: str,
    by_socket: bool,
    storm: asyncio.Event,
    rng: random.Random,
) -> None:
    socket = SocketGifter(client, cluster, journal, who, room) if by_socket else None
    try:
        while not storm.is_set():
            op = await (socket.send() if socket else gift_rest(client, cluster, journal, who, room))
            balance = int((op.receipt or {}).get("balance_coins", LOW_COINS + 1))
            if balance < LOW_COINS or op.code == "insufficient_coins":
                await topup(client, cluster, journal, who, hooks)
            await asyncio.sleep(rng.uniform(*GIFT_PAUSE_S))
    finally:
        if socket is not None:
            await socket.close()


async def _webhook_pump(
    client: httpx.AsyncClient,
    cluster: Cluster,
    journal: Journal,
    hooks: Webhooks,
    storm: asyncio.Event,
    rng: random.Random,
) -> None:
    while not storm.is_set():
        await asyncio.sleep(1.0)
        await deliver_webhooks(client, cluster, journal, hooks, rng)


async def _cashier(
    client: httpx.AsyncClient,
    cluster: Cluster,
    journal: Journal,
    creators: list[Person],
    storm: asyncio.Event,
) -> None:
    while not storm.is_set():
        await asyncio.sleep(3.0)
        for creator in creators:
            await payout(client, cluster, journal, creator, PAYOUT_DIAMONDS, ADMIN_TOKEN)


async def _faults(
    plan: Plan, nodes: list[Node], redis: PrivateRedis, journal: Journal, t0: float
) -> list[Fault]:
    schedule: list[tuple[float, str]] = [(0.20, "kill -9 node"), (0.45, "SIGSTOP node 5 s")]
    schedule.append((0.65, "Redis restarted empty"))
    if plan.restart_postgres:
        schedule.append((0.80, "PostgreSQL restarted"))
    faults: list[Fault] = []
    for share, name in schedule:
        await asyncio.sleep(max(0.0, t0 + share * plan.seconds - journal.now()))
        fault = Fault(name, journal.now())
        if name.startswith("kill"):
            nodes[0].kill()
            await asyncio.to_thread(nodes[0].start)
        elif name.startswith("SIGSTOP"):
            victim = nodes[1 % len(nodes)]
            victim.pause()
            await asyncio.sleep(PAUSE_S)
            victim.resume()
        elif name.startswith("Redis"):
            redis.kill()
            await asyncio.to_thread(redis.start)
        else:
            await asyncio.to_thread(restart_postgres)
        fault.ended_s = journal.now()
        faults.append(fault)
    await asyncio.sleep(max(0.0, t0 + plan.seconds - journal.now()))
    return faults


async def _settle(
    client: httpx.AsyncClient,
    cluster: Cluster,
    journal: Journal,
    hooks: Webhooks,
    viewers: list[Person],
    rooms: list[str],
    rng: random.Random,
) -> None:
    """What a careful client does afterwards: the provider delivers what it still holds, and
    every gift left unknown is sent again with its key; a sample of the acknowledged ones is
    sent again too, and must answer the same receipt (``_settle`` in workload notes any
    difference) without charging twice."""
    for _ in range(5):
        if not hooks.pending:
            break
        await deliver_webhooks(client, cluster, journal, hooks, rng)
    people = {v.user_id: (v, rooms[i % len(rooms)]) for i, v in enumerate(viewers)}
    gifts = [op for op in journal.ops if op.kind.startswith("gift")]
    again = [op for op in gifts if op.outcome is Outcome.UNKNOWN]
    again += [op for op in gifts if op.outcome is Outcome.OK][::10]
    for op in again:
        who, room = people[op.user_id]
        await resend_gift(client, cluster, journal, who, room, op)


def _unavailability(faults: list[Fault], ack_times: list[float], storm_end_s: float) -> None:
    """Each fault's window ends at the next fault (or the storm's end): no gap is counted twice."""
    ends = [f.at_s for f in faults[1:]] + [storm_end_s]
    for fault, window_end in zip(faults, ends, strict=True):
        until = min(fault.ended_s + RECOVERY_WINDOW_S, window_end)
        inside = [t for t in ack_times if fault.at_s < t <= until]
        points = [fault.at_s, *inside]
        gaps = [b - a for a, b in itertools.pairwise(points)]
        fault.unavailable_s = round(max(gaps, default=RECOVERY_WINDOW_S), 3)
        fault.first_ack_after_s = round(inside[0] - fault.at_s, 3) if inside else -1.0


def summary(plan: Plan, world: World, f: Findings) -> dict[str, Any]:
    ops: list[Op] = world.journal.ops
    acks = sorted(
        op.ended_s for op in ops if op.kind.startswith("gift") and op.outcome is Outcome.OK
    )
    _unavailability(plan.faults, acks, world.storm_end_s)
    gaps = [b - a for a, b in itertools.pairwise(acks)]
    by_kind: dict[str, dict[str, int]] = {}
    for op in ops:
        counts = by_kind.setdefault(op.kind, {"ok": 0, "refused": 0, "unknown": 0})
        counts[op.outcome.value] += 1
    return {
        "seconds": plan.seconds,
        "nodes": plan.nodes,
        "operations": f.operations,
        "acknowledged": f.acknowledged,
        "refused": f.refused,
        "unknown": f.unknown,
        "unknown_committed": f.unknown_committed,
        "lost": f.lost,
        "duplicated": f.duplicated,
        "phantom": f.phantom,
        "by_kind": by_kind,
        "ledger_verified": f.ledger_verified,
        "balances_checked": f.balances_checked,
        "balance_mismatches": f.balance_mismatches,
        "viewers_checked": f.viewers_checked,
        "viewer_resumes": sum(s.resumes for s in world.screens),
        "viewer_epochs": sum(len(s.epochs) for s in world.screens),
        "gifts_missing_on_screens": f.gifts_missing_on_screens,
        "gifts_shown_twice": f.gifts_shown_twice,
        "slow_viewer_closed_with": world.slow.closed_by_server,
        "bad_5xx": len(world.journal.bad_5xx),
        "bad_5xx_examples": world.journal.bad_5xx[:5],
        "retried_503": world.journal.retried_503,
        "inconsistent_retries": len(world.journal.inconsistent),
        "inconsistent_examples": world.journal.inconsistent[:5],
        "ack_gap_median_s": round(statistics.median(gaps), 3) if gaps else None,
        "faults": [
            {
                "fault": x.name,
                "at_s": round(x.at_s, 2),
                "lasted_s": round(x.ended_s - x.at_s, 2),
                "gifting_unavailable_s": x.unavailable_s,
                "first_ack_after_s": x.first_ack_after_s,
            }
            for x in plan.faults
        ],
        "problems": f.problems,
        "ok": (
            f.lost == 0
            and f.duplicated == 0
            and f.phantom == 0
            and f.ledger_verified
            and f.balance_mismatches == 0
            and f.gifts_missing_on_screens == 0
            and f.gifts_shown_twice == 0
            and not world.journal.bad_5xx
            and not world.journal.inconsistent
        ),
    }

"""``giftwave bench cluster``: N ``giftwave serve`` nodes behind HAProxy, one room, gifts
through every node, viewers spread over the nodes.

The topology is deploy/compose.yaml's (and scripts/cluster.sh's) as processes on this machine:
N nodes on 127.0.0.1 sharing a scratch PostgreSQL schema and a private ``redis-server`` (one
the bench starts and stops, so that its CPU is measured and no other cluster's channels mix
in), behind HAProxy with the deploy's choices (leastconn, ``/readyz`` checks, the answering
node in ``X-Giftwave-Node``). The config is written here rather than read from deploy/: the
bench must run from an installed package.

The load, all from this one process (on uvloop, hand-parsed frames: ``bench/ws_client.py``):

- anonymous viewer sockets opened through HAProxy, which spreads them (leastconn); each viewer
  learns its node from the 101 answer's ``X-Giftwave-Node``;
- on every node directly, logged-in WebSocket gifters keeping a window of Roses in flight, and
  keep-alive REST connections posting Roses (closed loops: the most the cluster commits);
  each sender sends through one node only, so a gift's node is known from its sender.

What it reports: gifts/s in total and per node; gift commit (``at_us``) → viewer p50/p99 for
viewers on another node than the sender's (the broker's path) and on the same node; ticks
missed (gaps in each node's ``seq``, or frames still owed at the end); the viewer count each
node's viewers were last told, against the sockets really open; CPU seconds of every part
(nodes, HAProxy, Redis, the nodes' PostgreSQL backends, this load generator) read from
``/proc`` around the measured window, and so CPU per gift; then ``ledger verify``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson
import psycopg

from giftwave.bench.api import gift_requester
from giftwave.bench.http_load import LoadResult, run_closed_loop
from giftwave.bench.risk_lag import RiskLagSampler
from giftwave.bench.scratch import scratch_database
from giftwave.bench.server import (
    ADMIN_TOKEN,
    BenchRoom,
    percentile,
    raise_open_files_limit,
    run,
    setup_room,
    socket_tickets,
)
from giftwave.bench.ws_client import WsClient, connect_all
from giftwave.db.engine import make_engine, migrate
from giftwave.db.urls import Backend, DatabaseUrl, parse_database_url
from giftwave.ledger.verify import verify_ledger
from giftwave.private_redis import HOST, PrivateRedis, free_port

START_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 30.0
MAX_NODES: Final = 16  # a 2-core machine: beyond this every node only waits for a core
SEQ_PREFIX: Final = b'{"v":1,"seq":'
ACK_PREFIX: Final = b'{"v":1,"ack":'
ERROR_PREFIX: Final = b'{"v":1,"error":'
NODE_HEADER: Final = b"x-giftwave-node:"
# Viewer counts are summed over nodes once a second and said at most once a second: after
# three seconds without joins every node's viewers have been told the new total.
SETTLE_S: Final = 2.5
DRAIN_S: Final = 2.0  # after the gifts stop: the last commits' frames reach every viewer
APPLICATION_NAME: Final = "giftwave-bench-cluster"  # finds the nodes' PostgreSQL backends
CLOCK_TICKS_PER_S: Final = os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class ClusterBenchConfig:
    nodes: int = 2
    viewers: int = 1000  # anonymous room sockets through HAProxy
    ws_gifters_per_node: int = 50  # logged-in sockets, each with ``window`` Roses in flight
    window: int = 4
    rest_connections_per_node: int = 8
    # REST senders per connection: each connection's next gift is from the next sender of its
    # node, so one sender's gifts are spread out as a crowd's would be.
    rest_senders_per_connection: int = 4
    seconds: float = 10.0
    warmup_seconds: float = 3.0
    sample_every: int = 10  # one viewer in this many parses every frame and times every gift
    # Gifts through the first this many nodes only (0: all). With 1 of 2, the second node only
    # follows the room: its CPU is what applying other nodes' gifts and writing frames costs.
    gift_nodes: int = 0


@dataclass(slots=True)
class ClusterBenchResult:
    nodes: int
    gifts_per_s: float
    ws_gifts_per_s: float
    rest_gifts_per_s: float
    gifts_per_s_by_node: dict[str, float]
    cross_node_latency_ms_p50: float
    cross_node_latency_ms_p99: float
    same_node_latency_ms_p50: float
    same_node_latency_ms_p99: float
    latency_samples_cross_node: int
    ticks_missed: int
    viewers: int
    viewers_by_node: dict[str, int]
    frames_per_s_by_node: dict[str, float]  # room frames written to the bench's viewers
    room_sockets: int  # viewers and WebSocket gifters: what every node should say
    viewer_counts_by_node: dict[str, list[int]]  # the counts that node's sampled viewers got
    viewer_counts_agree: bool
    viewers_closed: int  # by the server before the end: each one a failure
    gifters_closed: int
    gift_errors: dict[str, int]
    cpu_s: dict[str, float]  # in the measured window, per part
    node_cpu_ms_per_gift: float
    cluster_cpu_ms_per_gift: float  # nodes, HAProxy, Redis and the nodes' PostgreSQL backends
    load_average_1m: list[float]  # before and after the run
    seconds: float
    # The risk rules (every node runs them, off the gift path): how far behind the ledger
    # they were during the measured window, and how long they took to catch up after it.
    risk_lag_s_p50: float = 0.0
    risk_lag_s_max: float = 0.0
    risk_caught_up_s: float = 0.0
    verified: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the cluster ------------------------------------------------------------------------------


@dataclass(slots=True)
class Node:
    name: str  # as HAProxy names it, and says in X-Giftwave-Node
    port: int
    pid: int

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"


@dataclass(slots=True)
class Cluster:
    front_port: int
    nodes: list[Node]
    haproxy_pid: int
    redis_pid: int
    db: DatabaseUrl
    verified: bool = False

    @property
    def front(self) -> str:
        return f"http://{HOST}:{self.front_port}"


def haproxy_config(front_port: int, nodes: list[Node], maxconn: int) -> str:
    """deploy/haproxy/haproxy.cfg's choices, bound to loopback, with these nodes."""
    servers = "\n".join(f"    server {n.name} {HOST}:{n.port}" for n in nodes)
    return f"""global
    maxconn {maxconn}

defaults
    mode http
    option forwardfor
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout queue 10s
    timeout tunnel 1h
    timeout client-fin 10s

frontend giftwave_http
    bind {HOST}:{front_port}
    default_backend giftwave_nodes

backend giftwave_nodes
    balance leastconn
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    http-response set-header X-Giftwave-Node %s
    default-server check inter 2s fall 2 rise 2 maxconn 5000
{servers}
"""


def _executable(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(f"bench cluster needs {name} on PATH (scripts/services.sh installs it)")
    return found


def _with_application_name(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "application_name"]
    query.append(("application_name", APPLICATION_NAME))
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextmanager
def _process(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in a session of its own, its output in ``log``; SIGTERM at the end, then KILL."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _await(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``url`` answers 200 (bounded); the end of ``log`` if the process died first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"{url} did not answer 200 in {START_TIMEOUT_S:.0f} s:\n{tail}")


@contextmanager
def cluster(database_url: str, nodes: int) -> Iterator[Cluster]:
    """A scratch schema, a private Redis, ``nodes`` servers and HAProxy; afterwards (every
    process stopped) ``ledger verify`` on the schema, then the schema is dropped."""
    base = parse_database_url(database_url)
    if base.backend is not Backend.POSTGRESQL:
        raise RuntimeError("bench cluster needs PostgreSQL: set GIFTWAVE_DATABASE_URL")
    assert 1 <= nodes <= MAX_NODES
    raise_open_files_limit()  # the children inherit it: HAProxy holds two descriptors a socket
    with ExitStack() as stack:
        db = stack.enter_context(scratch_database(base.url, "benchcluster"))
        db = parse_database_url(_with_application_name(db.url))
        engine = make_engine(db)
        migrate(engine)
        engine.dispose()
        # Registered first, so it runs last but one: after every process below has stopped
        # (an ExitStack unwinds in reverse), before the schema is dropped.
        made_holder: list[Cluster] = []
        stack.callback(_verify_each, made_holder)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="giftwave-cluster-")))
        redis = PrivateRedis(tmp)
        redis.start()
        stack.callback(redis.kill)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GIFTWAVE_")},
            "GIFTWAVE_DATABASE_URL": db.url,
            "GIFTWAVE_BROKER_URL": redis.url,
            "GIFTWAVE_ADMIN_TOKEN": ADMIN_TOKEN,
            "GIFTWAVE_CLIP_STORE": str(tmp / "clips"),
            "GIFTWAVE_PASSWORD_TIME_COST": "1",
            "GIFTWAVE_PASSWORD_MEMORY_KIB": "8",
            # Every bench viewer signs up from the load generator's one address.
            "GIFTWAVE_REGISTER_ADDRESS_FREE": "100000",
            # A few hundred senders stand for a crowd: each sends far faster than a person
            # may (20/s), so the per-user limit is set out of reach. It still runs on every
            # gift (its cost is in the figures); it refuses none, and a socket refused too
            # often would be closed (CLOSE_POLICY) and stop sending.
            "GIFTWAVE_GIFT_RATE_PER_S": "10000",
            "GIFTWAVE_GIFT_RATE_BURST": "100000",
        }
        started: list[Node] = []
        procs: list[subprocess.Popen[bytes]] = []
        giftwave = str(Path(sys.executable).parent / "giftwave")  # this installation's
        if not Path(giftwave).exists():
            giftwave = _executable("giftwave")
        for i in range(1, nodes + 1):
            port = free_port()
            command = [giftwave, "serve", "--host", HOST, "--port", str(port), "--workers", "1"]
            proc = stack.enter_context(_process(command, tmp / f"node{i}.log", env))
            procs.append(proc)
            started.append(Node(f"node{i}", port, proc.pid))
        for node, proc in zip(started, procs, strict=True):
            _await(node.base + "/readyz", proc, tmp / f"{node.name}.log")
        front_port = free_port()
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        config = tmp / "haproxy.cfg"
        config.write_text(haproxy_config(front_port, started, min(20_000, soft // 2 - 100)))
        haproxy_log = tmp / "haproxy.log"
        haproxy = stack.enter_context(
            _process([_executable("haproxy"), "-f", str(config)], haproxy_log)
        )
        assert redis.pid is not None  # started above
        made = Cluster(front_port, started, haproxy.pid, redis.pid, db)
        made_holder.append(made)
        _await(made.front + "/readyz", haproxy, haproxy_log)
        yield made


def _verify_each(clusters: list[Cluster]) -> None:
    """``ledger verify`` on each cluster's schema (one, once it has started)."""
    for made in clusters:
        engine = make_engine(made.db)
        try:
            with engine.connect() as conn:
                made.verified = verify_ledger(conn).ok
        finally:
            engine.dispose()


# -- CPU from /proc ---------------------------------------------------------------------------


def _cpu_ticks(pid: int) -> int:
    """utime + stime of one process (0 if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return 0
    fields = raw[raw.rindex(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (a node's workers and writer, if it has any)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_bytes()
        except OSError:
            continue
        ppid = int(raw[raw.rindex(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _backend_pids(db: DatabaseUrl) -> list[int]:
    """The PostgreSQL backends the nodes hold open (their pools), found by application name."""
    with psycopg.connect(parse_database_url(db.url).libpq_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND pid <> "
            "pg_backend_pid()",
            (APPLICATION_NAME,),
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def _cpu_parts(made: Cluster, backends: list[int]) -> dict[str, int]:
    parts = {
        node.name: sum(_cpu_ticks(p) for p in [node.pid, *_children(node.pid)])
        for node in made.nodes
    }
    parts["haproxy"] = _cpu_ticks(made.haproxy_pid)
    parts["redis"] = _cpu_ticks(made.redis_pid)
    parts["postgres_backends"] = sum(_cpu_ticks(p) for p in backends)
    times = os.times()
    parts["load_generator"] = round((times.user + times.system) * CLOCK_TICKS_PER_S)
    return parts


# -- the load ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Seen:
    """What the viewers saw, summed."""

    measuring: bool = False
    cross_s: list[float] = field(default_factory=list)
    same_s: list[float] = field(default_factory=list)
    ticks_missed: int = 0
    frames: dict[str, int] = field(default_factory=dict)  # node → frames its viewers got


class _Viewer:
    """One anonymous socket: sequence numbers; if sampled, gift latency and viewer counts."""

    __slots__ = ("combo_senders", "count", "last_seq", "node", "sampled", "seen", "sender_node")

    def __init__(self, seen: _Seen, sender_node: dict[int, str], sampled: bool) -> None:
        self.seen = seen
        self.sender_node = sender_node
        self.sampled = sampled
        self.node = ""
        self.last_seq = -1
        self.count = -1  # the last viewer count this socket was told
        self.combo_senders: dict[int, int] = {}  # a combo's short number → its sender

    def on_message(self, payload: bytes) -> None:
        if not payload.startswith(SEQ_PREFIX):
            return
        end = payload.index(b",", len(SEQ_PREFIX))
        seq = int(payload[len(SEQ_PREFIX) : end])
        if self.last_seq >= 0 and seq > self.last_seq + 1:
            self.seen.ticks_missed += seq - self.last_seq - 1
        self.last_seq = max(self.last_seq, seq)
        if self.seen.measuring:
            self.seen.frames[self.node] = self.seen.frames.get(self.node, 0) + 1
        if self.sampled:
            self._parse(orjson.loads(payload), time.time_ns() // 1000)

    def _parse(self, frame: dict[str, Any], now_us: int) -> None:
        for event in frame.get("events", ()):
            kind = event.get("type")
            if kind == "snapshot":
                self.count = int(event.get("viewers", self.count))
                self.combo_senders.clear()  # a new epoch numbers combos afresh
            elif kind == "viewers":
                self.count = int(event["count"])
            elif kind == "gift":
                self.combo_senders[int(event["n"])] = int(event["sender_id"])
                self._time(int(event["sender_id"]), now_us - int(event["at_us"]))
            elif kind == "combo_counts":  # [n, count, coins, ms after at_us] per combo
                base_us = int(event["at_us"])
                for n, _, _, after_ms in event["counts"]:
                    sender = self.combo_senders.get(n)
                    if sender is not None:
                        self._time(sender, now_us - base_us - after_ms * 1000)

    def _time(self, sender_id: int, latency_us: int) -> None:
        if not self.seen.measuring:
            return
        node = self.sender_node.get(sender_id)
        if node is None:
            return
        bucket = self.seen.same_s if node == self.node else self.seen.cross_s
        bucket.append(latency_us / 1e6)


@dataclass(slots=True)
class _Tally:
    counting: bool = False
    ok: dict[str, int] = field(default_factory=dict)  # node → gifts acknowledged in the window
    errors: dict[str, int] = field(default_factory=dict)


class _Gifter:
    """One logged-in socket on one node: ``window`` Roses in flight, the next on each answer."""

    def __init__(self, node: str, key: str, tally: _Tally) -> None:
        self.node = node
        self.key = key
        self.tally = tally
        self.ids = itertools.count()
        self.client: WsClient | None = None
        self.running = True

    def send_next(self) -> None:
        assert self.client is not None
        i = next(self.ids)
        command = {
            "id": i,
            "cmd": "send_gift",
            "gift_id": "rose",
            "idempotency_key": f"{self.key}-{i}",
        }
        self.client.send_text(orjson.dumps(command))

    def on_message(self, payload: bytes) -> None:
        if payload.startswith(ACK_PREFIX):
            if self.tally.counting:
                self.tally.ok[self.node] = self.tally.ok.get(self.node, 0) + 1
        elif payload.startswith(ERROR_PREFIX):
            code = str(orjson.loads(payload)["error"]["code"])
            self.tally.errors[code] = self.tally.errors.get(code, 0) + 1
        else:
            return  # a room frame
        if self.running:
            self.send_next()


def _node_of(client: WsClient) -> str:
    for line in client.response_head.split(b"\r\n"):
        if line[: len(NODE_HEADER)].lower() == NODE_HEADER:
            return line[len(NODE_HEADER) :].strip().decode()
    raise RuntimeError("HAProxy's answer named no node (X-Giftwave-Node)")


@dataclass(slots=True)
class _Senders:
    """Who sends through which node: WebSocket gifters, then REST senders, per node."""

    ws: dict[str, list[tuple[int, str]]]  # node → (user id, token)
    rest: dict[str, list[str]]  # node → tokens
    node_of: dict[int, str]  # sender id → node


def _gift_nodes(made: Cluster, cfg: ClusterBenchConfig) -> list[Node]:
    return made.nodes[: cfg.gift_nodes or len(made.nodes)]


def _split_senders(room: BenchRoom, made: Cluster, cfg: ClusterBenchConfig) -> _Senders:
    people = iter(zip(room.viewer_ids, room.viewer_tokens, strict=True))
    senders = _Senders(ws={}, rest={}, node_of={})
    for node in _gift_nodes(made, cfg):
        ws = [next(people) for _ in range(cfg.ws_gifters_per_node)]
        rest = [
            next(people)
            for _ in range(cfg.rest_connections_per_node * cfg.rest_senders_per_connection)
        ]
        senders.ws[node.name] = ws
        senders.rest[node.name] = [token for _, token in rest]
        for user_id, _ in ws + rest:
            senders.node_of[user_id] = node.name
    return senders


async def _open_gifters(
    made: Cluster, room: BenchRoom, senders: _Senders, tally: _Tally
) -> list[_Gifter]:
    gifters: list[_Gifter] = []
    path = f"/v1/streams/{room.stream_id}/ws?ticket="
    for node in made.nodes:
        people = senders.ws.get(node.name, [])
        if not people:
            continue
        tickets = await socket_tickets(made.front, room.stream_id, [t for _, t in people])
        mine = [_Gifter(node.name, f"{node.name}-{uid}", tally) for uid, _ in people]
        targets = [(path + t, g.on_message) for t, g in zip(tickets, mine, strict=True)]
        for gifter, client in zip(mine, await connect_all(HOST, node.port, targets), strict=True):
            gifter.client = client
        gifters += mine
    return gifters


async def _rest(
    made: Cluster,
    room: BenchRoom,
    senders: _Senders,
    cfg: ClusterBenchConfig,
    tag: str,
    seconds: float,
) -> dict[str, LoadResult]:
    async def one(node: Node) -> LoadResult:
        requester = gift_requester(
            node.base, room.stream_id, senders.rest[node.name], f"{tag}{node.name}-"
        )
        return await run_closed_loop(
            node.base, requester, connections=cfg.rest_connections_per_node, seconds=seconds
        )

    nodes = _gift_nodes(made, cfg)
    results = await asyncio.gather(*(one(node) for node in nodes))
    return {node.name: r for node, r in zip(nodes, results, strict=True)}


async def _viewers(
    made: Cluster, room: BenchRoom, cfg: ClusterBenchConfig, seen: _Seen, senders: _Senders
) -> list[tuple[_Viewer, WsClient]]:
    """Anonymous sockets through HAProxy; at least one sampled viewer on every node."""
    watchers = [
        _Viewer(seen, senders.node_of, sampled=n % cfg.sample_every == 0)
        for n in range(cfg.viewers)
    ]
    path = f"/v1/streams/{room.stream_id}/ws"
    clients = await connect_all(HOST, made.front_port, [(path, v.on_message) for v in watchers])
    for viewer, client in zip(watchers, clients, strict=True):
        viewer.node = _node_of(client)
    for node in made.nodes:
        here = [v for v in watchers if v.node == node.name]
        if here and not any(v.sampled for v in here):
            here[0].sampled = True  # told the count at the next change (the gifters joining)
    return list(zip(watchers, clients, strict=True))


def _ticks_missed(viewers: list[tuple[_Viewer, WsClient]]) -> int:
    """Frames still owed at the end count as missed: every viewer of a node should have
    reached that node's last ``seq`` (each node numbers its own frames)."""
    last: dict[str, int] = {}
    for viewer, _ in viewers:
        last[viewer.node] = max(last.get(viewer.node, -1), viewer.last_seq)
    return sum(last[v.node] - max(v.last_seq, 0) for v, _ in viewers)


async def _load(
    made: Cluster, cfg: ClusterBenchConfig, say: Callable[[str], None]
) -> dict[str, Any]:
    per_node = (
        cfg.ws_gifters_per_node + cfg.rest_connections_per_node * cfg.rest_senders_per_connection
    )
    room = await setup_room(made.front, per_node * len(_gift_nodes(made, cfg)))
    senders = _split_senders(room, made, cfg)
    seen, tally = _Seen(), _Tally()
    say(f"{cfg.viewers} viewers through HAProxy")
    viewers = await _viewers(made, room, cfg, seen, senders)
    gifters = await _open_gifters(made, room, senders, tally)
    await asyncio.sleep(SETTLE_S)
    say(f"gifts through every node: {cfg.warmup_seconds:.0f} s warm-up, {cfg.seconds:.0f} s")
    for gifter in gifters:
        for _ in range(cfg.window):
            gifter.send_next()
    await _rest(made, room, senders, cfg, "w", cfg.warmup_seconds)
    backends = _backend_pids(made.db)
    before = _cpu_parts(made, backends)
    risk = RiskLagSampler(make_engine(made.db))
    risk.start()
    tally.counting = seen.measuring = True
    rest = await _rest(made, room, senders, cfg, "m", cfg.seconds)
    tally.counting = seen.measuring = False
    after = _cpu_parts(made, backends)
    risk.stop()
    for gifter in gifters:
        gifter.running = False
    await asyncio.sleep(DRAIN_S)
    caught_up_s = await asyncio.to_thread(risk.caught_up_s)
    risk.db.dispose()
    counts: dict[str, list[int]] = {}
    for viewer, _ in viewers:
        if viewer.sampled:
            counts.setdefault(viewer.node, [])
            if viewer.count not in counts[viewer.node]:
                counts[viewer.node].append(viewer.count)
    ticks_missed = seen.ticks_missed + _ticks_missed(viewers)
    closed = sum(client.closed.done() for _, client in viewers)
    gifters_closed = sum(g.client is not None and g.client.closed.done() for g in gifters)
    for _, client in viewers:
        client.close()
    for gifter in gifters:
        assert gifter.client is not None
        gifter.client.close()
    errors = dict(tally.errors)
    for result in rest.values():
        for status, n in result.errors.items():
            errors[f"http_{status}"] = errors.get(f"http_{status}", 0) + n
    return {
        "viewers": viewers,
        "room_sockets": len(viewers) + len(gifters),
        "seen": seen,
        "ws_ok": tally.ok,
        "rest_ok": {name: r.ok for name, r in rest.items()},
        "errors": errors,
        "counts": {node: sorted(c) for node, c in counts.items()},
        "ticks_missed": ticks_missed,
        "closed": closed,
        "gifters_closed": gifters_closed,
        "cpu_s": {k: (after[k] - before[k]) / CLOCK_TICKS_PER_S for k in before},
        "risk_lag_s": risk.samples_s,
        "risk_caught_up_s": caught_up_s,
    }


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    value = statistics.median(ordered) if q == 0.5 else percentile(ordered, q)
    return round(value * 1000, 1)


def run_cluster_bench(
    database_url: str, cfg: ClusterBenchConfig, say: Callable[[str], None]
) -> ClusterBenchResult:
    load_before = os.getloadavg()[0]
    with cluster(database_url, cfg.nodes) as made:
        names = ", ".join(f"{n.name} :{n.port}" for n in made.nodes)
        say(f"{cfg.nodes} node(s) up ({names}), HAProxy on {made.front}")
        got = run(_load(made, cfg, say))
    seconds = cfg.seconds
    by_node = {
        n.name: round((got["ws_ok"].get(n.name, 0) + got["rest_ok"].get(n.name, 0)) / seconds, 1)
        for n in made.nodes
    }
    gifts = sum(got["ws_ok"].values()) + sum(got["rest_ok"].values())
    cpu: dict[str, float] = {k: round(v, 2) for k, v in got["cpu_s"].items()}
    node_cpu_s = sum(cpu[n.name] for n in made.nodes)
    cluster_cpu_s = node_cpu_s + cpu["haproxy"] + cpu["redis"] + cpu["postgres_backends"]
    seen: _Seen = got["seen"]
    viewers: list[tuple[_Viewer, WsClient]] = got["viewers"]
    counts: dict[str, list[int]] = got["counts"]
    return ClusterBenchResult(
        nodes=cfg.nodes,
        gifts_per_s=round(gifts / seconds, 1),
        ws_gifts_per_s=round(sum(got["ws_ok"].values()) / seconds, 1),
        rest_gifts_per_s=round(sum(got["rest_ok"].values()) / seconds, 1),
        gifts_per_s_by_node=by_node,
        cross_node_latency_ms_p50=_ms(seen.cross_s, 0.5),
        cross_node_latency_ms_p99=_ms(seen.cross_s, 0.99),
        same_node_latency_ms_p50=_ms(seen.same_s, 0.5),
        same_node_latency_ms_p99=_ms(seen.same_s, 0.99),
        latency_samples_cross_node=len(seen.cross_s),
        ticks_missed=got["ticks_missed"],
        viewers=len(viewers),
        viewers_by_node={n.name: sum(v.node == n.name for v, _ in viewers) for n in made.nodes},
        room_sockets=got["room_sockets"],
        frames_per_s_by_node={
            n.name: round(seen.frames.get(n.name, 0) / seconds, 1) for n in made.nodes
        },
        viewer_counts_by_node=counts,
        viewer_counts_agree=len(counts) == cfg.nodes
        and all(c == [got["room_sockets"]] for c in counts.values()),
        viewers_closed=got["closed"],
        gifters_closed=got["gifters_closed"],
        gift_errors=got["errors"],
        cpu_s=cpu,
        node_cpu_ms_per_gift=round(node_cpu_s * 1000 / gifts, 3) if gifts else 0.0,
        cluster_cpu_ms_per_gift=round(cluster_cpu_s * 1000 / gifts, 3) if gifts else 0.0,
        load_average_1m=[round(load_before, 2), round(os.getloadavg()[0], 2)],
        seconds=seconds,
        risk_lag_s_p50=round(statistics.median(got["risk_lag_s"]), 2) if got["risk_lag_s"] else 0.0,
        risk_lag_s_max=round(max(got["risk_lag_s"], default=0.0), 2),
        risk_caught_up_s=got["risk_caught_up_s"],
        verified=made.verified,
    )

"""``giftwave bench ledger``: gifts to ONE hot creator from 10,000 viewers, durable commits.

Four measurements in one run:
1. throughput: many concurrent callers, each awaiting its gift's commit (closed loop);
2. the raw write ceiling, each run right after a throughput run: the same rows written by a
   plain loop in batches of the same size, on a second scratch database of the same kind
   (``bench/raw_write.py``);
3. latency: gifts offered at half that rate (open loop), commit latency p50 / p99;
4. baseline: the same gifts, one database transaction per gift.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import insert

from giftwave.bench.raw_write import RawWriter, fund
from giftwave.bench.scratch import scratch_database
from giftwave.db.engine import make_engine, migrate
from giftwave.db.tables import accounts
from giftwave.db.urls import Backend, DatabaseUrl
from giftwave.ledger.accounts import get_account
from giftwave.ledger.annex import Annex
from giftwave.ledger.engine import PostingEngine, now_us
from giftwave.ledger.model import AccountFlags, Outcome, Transfer, TransferCode
from giftwave.ledger.store import BatchStore
from giftwave.ledger.stores import open_store
from giftwave.ledger.verify import verify_ledger
from giftwave.ledger.writer_process import ProcessStore

GIFT_PRICE_COINS = 1
VIEWER_START_COINS = 10_000_000


@dataclass(slots=True)
class LedgerBenchConfig:
    seconds: float = 5.0
    viewers: int = 10_000
    concurrency: int = 4096
    repeat: int = 3
    baseline_seconds: float = 3.0
    verify: bool = True
    # "process": the store runs in a child process (ledger/writer_process.py), "thread": in
    # the engine's writer thread. The baseline always runs in a thread (no IPC per gift).
    # "auto": process on SQLite (+25% gifts/s); thread on PostgreSQL, where the writer process
    # gained ~10% but made three busy processes on two cores (loop, writer, the PostgreSQL
    # backend) and raised commit latency at half load (p50 ~5 -> ~10 ms; docs/benchmarks.md).
    writer: str = "auto"
    # None: by writer. With a writer process, batches of half the callers (4,096 transfers)
    # let two batches alternate: the child commits one while the loop resolves and refills
    # the other (8,192 held every caller in one batch: 85k gifts/s vs 103k on SQLite). In a
    # thread nothing overlaps that way and bigger batches cost less per gift (100k vs 83k).
    batch_max_transfers: int | None = None

    def writer_for(self, db: DatabaseUrl) -> str:
        if self.writer != "auto":
            return self.writer
        return "process" if db.backend is Backend.SQLITE else "thread"

    def batch_max(self, writer: str) -> int:
        if self.batch_max_transfers is not None:
            return self.batch_max_transfers
        return 4096 if writer == "process" else 8192


@dataclass(slots=True)
class LedgerBenchResult:
    backend: str
    writer: str
    gifts_per_s: float
    baseline_gifts_per_s: float
    ratio: float
    latency_ms_p50: float
    latency_ms_p99: float
    latency_load_gifts_per_s: float
    runs_gifts_per_s: list[float] = field(default_factory=list)
    # The same rows written by a plain loop (no rules, no planner, no chain) in batches of the
    # engine's size on the same kind of database, one run after each throughput run; the
    # ratio is the engine's median over the ceiling's (1.0: the engine writes as fast).
    raw_ceiling_gifts_per_s: float = 0.0
    raw_ratio: float = 0.0
    raw_runs_gifts_per_s: list[float] = field(default_factory=list)
    # The same closed loop against a store that writes nothing: what the engine and the
    # callers cost by themselves, the ceiling any database could reach in this process.
    no_store_gifts_per_s: float = 0.0
    mean_batch_gifts: float = 0.0
    viewers: int = 0
    concurrency: int = 0
    verified: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _Scene:
    viewer_ids: list[int]
    coins_issued_id: int
    spent_id: int
    diamonds_issued_id: int
    creator_id: int


def _setup(db: DatabaseUrl, viewers: int) -> _Scene:
    engine = make_engine(db)
    migrate(engine)
    created = now_us()
    names = ["platform:coins_issued", "platform:gifts_spent", "platform:diamonds_issued"]
    with engine.begin() as conn:
        conn.execute(
            insert(accounts),
            [
                {
                    "name": n,
                    "asset": "DIAMOND" if "diamond" in n else "COIN",
                    "created_at_us": created,
                }
                for n in names
            ]
            + [
                {
                    "name": "creator:bench:diamonds",
                    "asset": "DIAMOND",
                    "flags": 1,
                    "created_at_us": created,
                }
            ]
            + [
                {
                    "name": f"viewer:{i}:coins",
                    "asset": "COIN",
                    "flags": int(AccountFlags.NO_OVERDRAFT),
                    "created_at_us": created,
                }
                for i in range(viewers)
            ],
        )
        ids = {n: get_account(conn, n).id for n in [*names, "creator:bench:diamonds"]}
        first_viewer = get_account(conn, "viewer:0:coins").id
    engine.dispose()
    return _Scene(
        viewer_ids=list(range(first_viewer, first_viewer + viewers)),
        coins_issued_id=ids["platform:coins_issued"],
        spent_id=ids["platform:gifts_spent"],
        diamonds_issued_id=ids["platform:diamonds_issued"],
        creator_id=ids["creator:bench:diamonds"],
    )


async def _fund(engine: PostingEngine, scene: _Scene) -> None:
    issued = scene.coins_issued_id
    step = min(4000, engine.max_submission_transfers)
    for start in range(0, len(scene.viewer_ids), step):
        chunk = scene.viewer_ids[start : start + step]
        outcomes = await engine.submit(
            [
                Transfer(f"fund:{v}", issued, v, VIEWER_START_COINS, TransferCode.TOPUP)
                for v in chunk
            ]
        )
        assert all(o is Outcome.OK for o in outcomes), outcomes[:3]


class _GiftMaker:
    """Unique ids per gift; viewers taken round-robin so every gift hits a different row."""

    def __init__(self, scene: _Scene, tag: str) -> None:
        self.scene, self.tag, self.n = scene, tag, 0

    def next(self) -> list[Transfer]:
        self.n += 1
        s = self.scene
        viewer = s.viewer_ids[self.n % len(s.viewer_ids)]
        key = f"{self.tag}{self.n}"
        return [
            Transfer(key + "c", viewer, s.spent_id, GIFT_PRICE_COINS, TransferCode.GIFT, True),
            Transfer(
                key + "d", s.diamonds_issued_id, s.creator_id, GIFT_PRICE_COINS, TransferCode.GIFT
            ),
        ]


async def _closed_loop(
    engine: PostingEngine, maker: _GiftMaker, seconds: float, concurrency: int
) -> float:
    deadline = time.perf_counter() + seconds
    done = 0

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            outcome = await engine.submit(maker.next())
            assert outcome[0] is Outcome.OK, outcome
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


async def _open_loop(
    engine: PostingEngine, maker: _GiftMaker, seconds: float, rate: float
) -> list[float]:
    """Offer gifts at ``rate`` per second regardless of how fast they commit."""
    latencies: list[float] = []
    pending: set[asyncio.Task[None]] = set()

    async def one(gift: list[Transfer]) -> None:
        t0 = time.perf_counter()
        outcome = await engine.submit(gift)
        latencies.append((time.perf_counter() - t0) * 1000)
        assert outcome[0] is Outcome.OK, outcome

    start = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            task = asyncio.create_task(one(maker.next()))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        await asyncio.sleep(0.001)
    await asyncio.gather(*pending)
    return latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _NoStore:
    """Answers every transfer ``ok`` without touching a database."""

    def apply_batch(
        self,
        requests: Sequence[Sequence[Transfer]],
        now_us: int,
        annexes: Sequence[Annex | None] | None = None,
    ) -> list[list[Outcome]]:
        return [[Outcome.OK] * len(request) for request in requests]

    def expired_pending(self, now_us: int, limit: int) -> list[tuple[str, str]]:
        return []

    def close(self) -> None:
        pass


def _raw_writer(raw_db: DatabaseUrl, viewers: int, batch_max: int) -> RawWriter:
    scene = _setup(raw_db, viewers)
    fund(raw_db, scene.viewer_ids, scene.coins_issued_id, VIEWER_START_COINS)
    return RawWriter(
        raw_db,
        viewer_ids=scene.viewer_ids,
        spent_id=scene.spent_id,
        diamonds_issued_id=scene.diamonds_issued_id,
        creator_id=scene.creator_id,
        batch_transfers=batch_max,
        amount=GIFT_PRICE_COINS,
    )


async def _run(
    db: DatabaseUrl, raw_db: DatabaseUrl, cfg: LedgerBenchConfig, say: Callable[[str], None]
) -> LedgerBenchResult:
    scene = _setup(db, cfg.viewers)
    writer = cfg.writer_for(db)
    batch_max = cfg.batch_max(writer)
    raw = _raw_writer(raw_db, cfg.viewers, batch_max)
    store: BatchStore = ProcessStore(db) if writer == "process" else open_store(db)
    engine = PostingEngine(store, batch_max_transfers=batch_max)
    async with engine:
        await _fund(engine, scene)
        maker = _GiftMaker(scene, "g")
        runs, raw_runs = [], []
        batches0, subs0 = engine.stats.batches, engine.stats.submissions
        for i in range(cfg.repeat):
            rate = await _closed_loop(engine, maker, cfg.seconds, cfg.concurrency)
            runs.append(rate)
            # Interleaved: a drift in the machine's speed falls on both sides alike.
            raw_rate = await asyncio.to_thread(raw.run, cfg.seconds)
            raw_runs.append(raw_rate)
            say(
                f"throughput run {i + 1}/{cfg.repeat}: {rate:,.0f} gifts/s;"
                f" raw write of the same rows: {raw_rate:,.0f} gifts/s"
            )
        mean_batch = (engine.stats.submissions - subs0) / max(1, engine.stats.batches - batches0)
        best = statistics.median(runs)
        ceiling = statistics.median(raw_runs)
        say(f"engine / raw write ceiling: {best / ceiling:.0%}")
        load = best / 2
        latencies = await _open_loop(engine, maker, cfg.seconds, load)
        p50, p99 = _percentile(latencies, 0.50), _percentile(latencies, 0.99)
        say(f"latency at {load:,.0f} gifts/s: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    baseline_engine = PostingEngine(open_store(db), batch_max_transfers=2)
    async with baseline_engine:
        baseline = await _closed_loop(
            baseline_engine, _GiftMaker(scene, "b"), cfg.baseline_seconds, 64
        )
    say(f"baseline, one transaction per gift: {baseline:,.0f} gifts/s")
    async with PostingEngine(_NoStore(), batch_max_transfers=batch_max) as nothing:
        no_store = await _closed_loop(nothing, _GiftMaker(scene, "n"), cfg.seconds, cfg.concurrency)
    say(f"engine alone, no database: {no_store:,.0f} gifts/s")
    verified = None
    if cfg.verify:
        sa_engine = make_engine(db)
        with sa_engine.connect() as conn:
            report = verify_ledger(conn)
        sa_engine.dispose()
        verified = report.ok
        say("ledger verify: " + ("clean" if report.ok else "; ".join(report.problems[:3])))
    return LedgerBenchResult(
        backend=db.backend.value,
        writer=writer,
        gifts_per_s=round(best, 1),
        baseline_gifts_per_s=round(baseline, 1),
        ratio=round(best / baseline, 1) if baseline else float("inf"),
        latency_ms_p50=round(p50, 3),
        latency_ms_p99=round(p99, 3),
        latency_load_gifts_per_s=round(load, 1),
        runs_gifts_per_s=[round(r, 1) for r in runs],
        raw_ceiling_gifts_per_s=round(ceiling, 1),
        raw_ratio=round(best / ceiling, 3),
        raw_runs_gifts_per_s=[round(r, 1) for r in raw_runs],
        no_store_gifts_per_s=round(no_store, 1),
        mean_batch_gifts=round(mean_batch, 1),
        viewers=cfg.viewers,
        concurrency=cfg.concurrency,
        verified=verified,
    )


def run_ledger_bench(
    database_url: str, cfg: LedgerBenchConfig, say: Callable[[str], None]
) -> LedgerBenchResult:
    import uvloop

    with (
        scratch_database(database_url, "bench") as db,
        scratch_database(database_url, "benchraw") as raw_db,
    ):
        result: LedgerBenchResult = uvloop.run(_run(db, raw_db, cfg, say))
    return result

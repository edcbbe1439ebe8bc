"""Background jobs: durable rows (``clip_jobs``) and a bounded queue drained by a fixed number
of workers in this process. Rendering never runs in a request: a request inserts a row and
offers its id to the queue; a worker claims it (queued → running, a conditional update, so two
processes never run one job), runs it and records progress and the outcome.

A job found ``queued`` or ``running`` when the app starts (a crash, a kill) is reset and run
again from the beginning; its partial outputs are deleted first (the runner's ``recover``).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, insert, select, update

from giftwave import metrics
from giftwave.clock import now_us
from giftwave.db.tables import clip_jobs
from giftwave.periodic import PeriodicTask, Schedule

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S: Final = 5.0  # queued rows the queue had no room for are offered again
MAX_SWEEP: Final = 1000


class JobKind(enum.StrEnum):
    RENDER = "render"  # a watermarked download of a clip's version
    CUT = "cut"  # a new clip cut from a recording


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    clip_id: str
    kind: JobKind
    version: int
    status: JobStatus
    progress_pct: int
    params: dict[str, Any]
    output_key: str | None
    output_bytes: int
    error: str | None
    created_at_us: int
    updated_at_us: int


def _to_job(row: Row[tuple[object, ...]]) -> Job:
    m = row._mapping
    return Job(
        id=m["id"],
        clip_id=m["clip_id"],
        kind=JobKind(m["kind"]),
        version=int(m["version"]),
        status=JobStatus(m["status"]),
        progress_pct=int(m["progress_pct"]),
        params=json.loads(m["params"]),
        output_key=m["output_key"],
        output_bytes=int(m["output_bytes"]),
        error=m["error"],
        created_at_us=int(m["created_at_us"]),
        updated_at_us=int(m["updated_at_us"]),
    )


def insert_job(
    conn: Connection, job_id: str, clip_id: str, kind: JobKind, version: int, params: dict[str, Any]
) -> None:
    at = now_us()
    conn.execute(
        insert(clip_jobs).values(
            id=job_id,
            clip_id=clip_id,
            kind=kind.value,
            version=version,
            status=JobStatus.QUEUED.value,
            progress_pct=0,
            params=json.dumps(params),
            created_at_us=at,
            updated_at_us=at,
        )
    )
    metrics.CLIP_JOBS.labels(JobStatus.QUEUED.value).inc()


def find_job(conn: Connection, job_id: str) -> Job | None:
    row = conn.execute(select(clip_jobs).where(clip_jobs.c.id == job_id)).first()
    return None if row is None else _to_job(row)


def job_for(conn: Connection, clip_id: str, kind: JobKind, version: int) -> Job | None:
    row = conn.execute(
        select(clip_jobs).where(
            clip_jobs.c.clip_id == clip_id,
            clip_jobs.c.kind == kind.value,
            clip_jobs.c.version == version,
        )
    ).first()
    return None if row is None else _to_job(row)


def set_job(conn: Connection, job_id: str, **values: Any) -> None:
    conn.execute(
        update(clip_jobs).where(clip_jobs.c.id == job_id).values(updated_at_us=now_us(), **values)
    )
    if "status" in values:  # one of four states: a bounded label
        metrics.CLIP_JOBS.labels(values["status"]).inc()


def claim(conn: Connection, job_id: str) -> bool:
    """queued → running, only if it is still queued: False means another worker has it."""
    done = conn.execute(
        update(clip_jobs)
        .where(clip_jobs.c.id == job_id, clip_jobs.c.status == JobStatus.QUEUED.value)
        .values(status=JobStatus.RUNNING.value, progress_pct=0, updated_at_us=now_us())
    )
    if done.rowcount != 1:
        return False
    metrics.CLIP_JOBS.labels(JobStatus.RUNNING.value).inc()
    return True


def unfinished(conn: Connection, limit: int) -> list[Job]:
    rows = conn.execute(
        select(clip_jobs)
        .where(clip_jobs.c.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
        .order_by(clip_jobs.c.created_at_us, clip_jobs.c.id)
        .limit(limit)
    ).all()
    return [_to_job(r) for r in rows]


def queued_ids(conn: Connection, limit: int) -> list[str]:
    rows = conn.execute(
        select(clip_jobs.c.id)
        .where(clip_jobs.c.status == JobStatus.QUEUED.value)
        .order_by(clip_jobs.c.created_at_us, clip_jobs.c.id)
        .limit(limit)
    ).all()
    return [str(r[0]) for r in rows]


class JobQueue:
    """A bounded queue of job ids and ``workers`` tasks running ``run(job_id)`` one at a time
    each. ``offer`` never blocks: False means the queue is full (the row stays queued and the
    sweep offers it again when there is room)."""

    def __init__(
        self,
        db: Engine,
        run: Callable[[str], Awaitable[None]],
        *,
        workers: int,
        queue_max: int,
    ) -> None:
        assert workers >= 1
        assert queue_max >= 1
        self._db = db
        self._run = run
        self._workers = workers
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_max)
        self._known: set[str] = set()  # offered and not finished here
        self._tasks: list[asyncio.Task[None]] = []
        self._sweeps = PeriodicTask("clip-sweep", self._sweep, Schedule(SWEEP_INTERVAL_S))

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"clip-worker-{i}") for i in range(self._workers)
        ]
        self._sweeps.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._sweeps.stop()

    def offer(self, job_id: str) -> bool:
        if job_id in self._known:
            return True
        try:
            self._queue.put_nowait(job_id)
        except asyncio.QueueFull:
            return False
        self._known.add(job_id)
        metrics.CLIP_QUEUE.set(self._queue.qsize())
        return True

    @property
    def full(self) -> bool:
        return self._queue.full()

    async def _work(self) -> None:
        while True:
            job_id = await self._queue.get()
            metrics.CLIP_QUEUE.set(self._queue.qsize())
            try:
                claimed = await asyncio.to_thread(self._claim, job_id)
                if claimed:
                    await self._run(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # the job's own failures are recorded by run(); this is a bug
                log.exception("clip job %s crashed", job_id)
            finally:
                self._known.discard(job_id)

    def _claim(self, job_id: str) -> bool:
        with self._db.begin() as conn:
            return claim(conn, job_id)

    async def _sweep(self) -> None:
        if self._queue.full():
            return
        for job_id in await asyncio.to_thread(self._queued, MAX_SWEEP):
            if not self.offer(job_id):
                break

    def _queued(self, limit: int) -> list[str]:
        with self._db.connect() as conn:
            return queued_ids(conn, limit)

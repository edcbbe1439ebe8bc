"""The app's clips: the store, FFmpeg, the job queue, and the flows that tie them to the
database so that nothing is half-written: an upload's row is inserted only once its file is
stored (and the file is deleted when the insert fails); a job's output is stored before its
row says done; temporary files are deleted whatever happens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import tempfile
import time
from pathlib import Path
from typing import Final

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from giftwave.clips.jobs import (
    Job,
    JobKind,
    JobQueue,
    JobStatus,
    find_job,
    insert_job,
    job_for,
    set_job,
    unfinished,
)
from giftwave.clips.library import (
    Clip,
    ClipSource,
    ClipStatus,
    find_clip,
    insert_clip,
    new_id,
    update_clip,
)
from giftwave.clips.media import (
    END_CARD_S,
    FfmpegMissing,
    Limits,
    MediaError,
    NotAVideo,
    OverLimit,
    Probe,
    Tools,
    child_bounds,
    cut_command,
    find_tools,
    probe,
    progress_pct,
    render_command,
)
from giftwave.clips.sources import check_recording_url
from giftwave.clips.storage import ClipStore, LocalStore, StoreError, open_store
from giftwave.config import Settings
from giftwave.db.urls import Backend, parse_database_url
from giftwave.errors import Code, Conflict, Forbidden, Invalid, NotFound, RateLimited, Unavailable
from giftwave.identity.permissions import require_creator
from giftwave.identity.users import User, require_active

log = logging.getLogger(__name__)

PROGRESS_WRITE_S: Final = 0.5  # a job's progress row is written at most this often
ERROR_CHARS: Final = 200
MIN_JOB_TIMEOUT_S: Final = 120.0
JOB_TIMEOUT_PER_MEDIA_S: Final = 10.0  # a job may take ten times its media's length
STDERR_KEEP_BYTES: Final = 4096
RECOVER_MAX: Final = 10_000
PROBES_BUSY_RETRY_AFTER_S: Final = 2.0


class JobFailed(Exception):
    pass


def default_store_url(settings: Settings) -> str:
    """A ``clips/`` folder beside the SQLite database, else in the working directory."""
    db = parse_database_url(settings.database_url)
    if db.backend is Backend.SQLITE:
        return str(Path(db.sqlite_path).resolve().parent / "clips")
    return str(Path.cwd() / "clips")


def media_limits(settings: Settings) -> Limits:
    """What a clip may be and what FFmpeg may use, from the ``clip_*`` settings."""
    return Limits(
        max_side_px=settings.clip_max_side_px,
        max_pixels=settings.clip_max_pixels,
        max_fps=settings.clip_max_fps,
        max_duration_ms=round(settings.clip_max_duration_s * 1000),
        max_streams=settings.clip_max_streams,
        max_bit_depth=settings.clip_max_bit_depth,
        render_max_p=settings.clip_render_max_p,
        threads=settings.clip_ffmpeg_threads,
        memory_bytes=settings.clip_ffmpeg_memory_mib * 1024**2,
    )


class Clips:
    def __init__(self, settings: Settings, db: Engine) -> None:
        self.db = db
        self.max_bytes = settings.clip_max_bytes
        self.max_duration_ms = round(settings.clip_max_duration_s * 1000)
        self.limits = media_limits(settings)
        self._probe_slots = asyncio.Semaphore(settings.clip_probes_at_once)
        self._probe_wait_s = settings.clip_probe_wait_ms / 1000
        self.recording_hosts = settings.clip_recording_hosts
        self.tmp_dir = Path(settings.clip_tmp_dir or Path(tempfile.gettempdir()) / "giftwave-clips")
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.store: ClipStore = open_store(settings.clip_store or default_store_url(settings))
        self.tools: Tools | None
        try:
            self.tools = find_tools()
        except FfmpegMissing as exc:
            # The rest of giftwave runs; uploads, cuts and downloads answer 503 until installed.
            log.error("clips are unavailable: %s", exc)
            self.tools = None
        self.queue = JobQueue(
            db, self.run_job, workers=settings.clip_workers, queue_max=settings.clip_queue_max
        )

    async def start(self) -> None:
        log.info("clips: store %s, temporary files in %s", self.store.describe(), self.tmp_dir)
        recovered = await asyncio.to_thread(self.recover)
        self.queue.start()
        for job_id in recovered:
            if not self.queue.offer(job_id):
                break  # the sweep offers the rest as the queue empties

    async def stop(self) -> None:
        await self.queue.stop()

    @staticmethod
    def require_poster(user: User) -> None:
        """Who may post a clip: an active creator (checked again by ``upload`` and
        ``request_cut``; a route asks first, before it receives a file)."""
        require_creator(user, "post clips")
        require_active(user)

    def require_tools(self) -> Tools:
        if self.tools is None:
            raise Unavailable(
                Code.FFMPEG_UNAVAILABLE, "clips need FFmpeg, which is not installed on this server"
            )
        return self.tools

    def temp_path(self, stem: str, suffix: str) -> Path:
        return self.tmp_dir / f"{stem}{suffix}"

    def job_temp(self, job: Job, suffix: str) -> Path:
        """A job's temporary file, new for each attempt: an FFmpeg orphaned by a killed server
        (it dies at its next progress write, into a closed pipe) never shares a file with the
        next attempt. ``_delete_temp`` removes every attempt's files by the job's id."""
        return self.tmp_dir / f"{job.id}.{secrets.token_hex(4)}{suffix}"

    # --- uploads --------------------------------------------------------------------------

    def check_probe(self, tools: Tools, path: Path) -> Probe:
        """The file's probe, or 422: ``not_a_video``, or the code of the limit it is past."""
        try:
            return probe(tools, path, self.limits)
        except NotAVideo as exc:
            raise Invalid(Code.NOT_A_VIDEO, f"not a video giftwave can play: {exc}") from exc
        except OverLimit as exc:
            raise Invalid(exc.code, exc.detail, **exc.limit) from exc

    async def upload(self, creator: User, title: str, path: Path) -> Clip:
        """``accept_upload`` on a worker thread, once a probe slot is free: each probe is a
        bounded child, and the slots bound how many run at once (503 ``clip_probes_busy``
        after waiting ``clip_probe_wait_ms`` for one)."""
        self.require_poster(creator)
        try:
            async with asyncio.timeout(self._probe_wait_s):
                await self._probe_slots.acquire()
        except TimeoutError:
            raise Unavailable(
                Code.CLIP_PROBES_BUSY,
                "many clips are being checked: try again in a moment",
                retry_after_s=PROBES_BUSY_RETRY_AFTER_S,
            ) from None
        work = asyncio.ensure_future(asyncio.to_thread(self.accept_upload, creator, title, path))
        # Freed when the probe ends, not when the request does: a client that hangs up must not
        # free a slot its probe still holds.
        work.add_done_callback(self._free_probe_slot)
        return await asyncio.shield(work)

    def _free_probe_slot(self, done: asyncio.Future[Clip]) -> None:
        self._probe_slots.release()
        if not done.cancelled():
            done.exception()  # retrieved here: the request that wanted it may have gone

    def accept_upload(self, creator: User, title: str, path: Path) -> Clip:
        """Probe, store, then insert the row (the stored file is removed if that fails)."""
        tools = self.require_tools()
        found = self.check_probe(tools, path)
        clip_id = new_id("cl")
        key = f"{clip_id}/source.{found.container}"
        self._put(key, path, found.content_type)
        try:
            with self.db.begin() as conn:
                clip = insert_clip(
                    conn,
                    clip_id,
                    creator.id,
                    title,
                    ClipSource.UPLOAD,
                    ClipStatus.READY,
                    found.content_type,
                    video_key=key,
                    size_bytes=path.stat().st_size,
                    duration_ms=found.duration_ms,
                    width=found.width,
                    height=found.height,
                    has_audio=found.has_audio,
                )
        except BaseException:
            self.forget(key)
            raise
        return clip

    def _put(self, key: str, path: Path, content_type: str) -> None:
        try:
            self.store.put(key, path, content_type)
        except StoreError as exc:
            log.error("clip store refused %s: %s", key, exc)
            raise Unavailable(
                Code.CLIP_STORE_UNAVAILABLE, "the clip store refused the file"
            ) from exc

    def forget(self, key: str) -> None:
        try:
            self.store.delete(key)
        except StoreError:
            log.exception("could not delete %s from the clip store", key)

    # --- cuts of recordings ---------------------------------------------------------------

    def request_cut(
        self, creator: User, title: str, url: str, start_s: float, end_s: float
    ) -> tuple[Clip, Job]:
        """A ``processing`` clip and the queued job that cuts it (the queue is offered it by
        the caller, on the event loop)."""
        self.require_poster(creator)
        self.require_tools()
        if end_s <= start_s:
            raise Invalid(Code.INVALID_RANGE, "end_s must be after start_s")
        check_recording_url(url, self.recording_hosts)
        if (end_s - start_s) * 1000 > self.max_duration_ms:
            raise Invalid(
                Code.CLIP_TOO_LONG,
                f"a clip lasts at most {self.max_duration_ms / 1000:g} s",
                max_duration_s=self.max_duration_ms / 1000,
            )
        clip_id, job_id = new_id("cl"), new_id("cj")
        with self.db.begin() as conn:
            clip = insert_clip(
                conn,
                clip_id,
                creator.id,
                title,
                ClipSource.RECORDING,
                ClipStatus.PROCESSING,
                "video/mp4",
            )
            insert_job(
                conn,
                job_id,
                clip_id,
                JobKind.CUT,
                1,
                {"recording_url": url, "start_s": start_s, "end_s": end_s},
            )
            job = find_job(conn, job_id)
        assert job is not None
        return clip, job

    # --- watermarked downloads ------------------------------------------------------------

    def download_job(self, clip_id: str) -> tuple[Job, bool]:
        """The render job of the clip's current version: the one there is (a failed one is
        queued again), or a new one. True when it must be offered to the queue."""
        self.require_tools()
        with self.db.begin() as conn:
            clip = find_clip(conn, clip_id)
            if clip is None or clip.status is ClipStatus.FAILED:
                raise NotFound(Code.CLIP_NOT_FOUND, f"no clip {clip_id!r}")
            if clip.status is not ClipStatus.READY:
                raise Conflict(Code.CLIP_NOT_READY, "the clip is still being made")
            if not clip.downloads_enabled:
                raise Forbidden(Code.DOWNLOADS_DISABLED, "the creator turned off downloads")
            job = job_for(conn, clip.id, JobKind.RENDER, clip.version)
            if job is not None and job.status is JobStatus.FAILED:
                set_job(conn, job.id, status=JobStatus.QUEUED.value, progress_pct=0, error=None)
                job = find_job(conn, job.id)
            if job is not None:
                return job, job.status is JobStatus.QUEUED
        if self.queue.full:
            raise RateLimited(
                Code.RENDER_QUEUE_FULL, "many downloads are being made: try again soon", 10.0
            )
        job_id = new_id("cj")
        try:
            with self.db.begin() as conn:
                insert_job(conn, job_id, clip.id, JobKind.RENDER, clip.version, {})
        except IntegrityError:  # someone asked at the same moment: theirs is ours
            pass
        with self.db.connect() as conn:
            found = job_for(conn, clip.id, JobKind.RENDER, clip.version)
        assert found is not None
        return found, True

    def offer(self, job: Job) -> None:
        """Queue a job (a full queue leaves the row queued: the sweep offers it later)."""
        self.queue.offer(job.id)

    # --- running jobs ---------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Jobs a stopped process left unfinished: partial outputs deleted, queued again."""
        with self.db.connect() as conn:
            jobs = unfinished(conn, RECOVER_MAX)
        for job in jobs:
            self._delete_temp(job.id)
            if job.output_key:
                self.forget(job.output_key)
            if job.kind is JobKind.CUT:
                clip = self._clip(job.clip_id)
                if clip is not None and clip.video_key and clip.status is not ClipStatus.READY:
                    self.forget(clip.video_key)
            with self.db.begin() as conn:
                set_job(
                    conn,
                    job.id,
                    status=JobStatus.QUEUED.value,
                    progress_pct=0,
                    output_key=None,
                    error=None,
                )
            log.info("clip job %s (%s) will run again", job.id, job.kind.value)
        return [j.id for j in jobs]

    def _delete_temp(self, job_id: str) -> None:
        for path in self.tmp_dir.glob(f"{job_id}.*"):
            path.unlink(missing_ok=True)

    async def run_job(self, job_id: str) -> None:
        job = await asyncio.to_thread(self._job, job_id)
        if job is None:
            return
        try:
            if job.kind is JobKind.RENDER:
                await self._render(job)
            else:
                await self._cut(job)
        except JobFailed as exc:
            log.info("clip job %s failed: %s", job.id, exc)
            await asyncio.to_thread(self._fail, job, str(exc)[:ERROR_CHARS])
        except Exception:  # a bug or the database: the job fails rather than stay "running"
            log.exception("clip job %s crashed", job.id)
            await asyncio.to_thread(self._fail, job, "internal error")
        finally:
            await asyncio.to_thread(self._delete_temp, job.id)

    def _job(self, job_id: str) -> Job | None:
        with self.db.connect() as conn:
            return find_job(conn, job_id)

    def _fail(self, job: Job, error: str) -> None:
        with self.db.begin() as conn:
            set_job(conn, job.id, status=JobStatus.FAILED.value, error=error)
            if job.kind is JobKind.CUT:
                update_clip(conn, job.clip_id, status=ClipStatus.FAILED.value, error=error)

    def _source(self, clip: Clip, job: Job) -> Path:
        """The clip's file on local disk: the store's own, or a temporary copy."""
        assert clip.video_key is not None
        if isinstance(self.store, LocalStore):
            return self.store.root / clip.video_key
        path = self.job_temp(job, ".src")
        try:
            size = self.store.size(clip.video_key)
            with path.open("wb") as f:
                for chunk in self.store.read(clip.video_key, 0, size - 1):
                    f.write(chunk)
        except StoreError as exc:
            raise JobFailed(f"the clip store could not give the source: {exc}") from exc
        return path

    async def _render(self, job: Job) -> None:
        tools = self.tools
        if tools is None:
            raise JobFailed("FFmpeg is not installed")
        clip = await asyncio.to_thread(self._clip, job.clip_id)
        if clip is None or clip.status is not ClipStatus.READY:
            raise JobFailed("the clip is gone")
        source = await asyncio.to_thread(self._source, clip, job)
        try:  # checked again: a clip stored before a limit was lowered meets it here
            found = await asyncio.to_thread(probe, tools, source, self.limits)
        except MediaError as exc:
            raise JobFailed(str(exc)) from exc
        output = self.job_temp(job, ".out.mp4")
        # The probe held the length to the limit, and the render is cut to it: the timeout
        # follows the capped output.
        total_us = (found.duration_ms + round(END_CARD_S * 1000)) * 1000
        command = render_command(tools, source, output, clip.creator_handle, found, self.limits)
        await self._ffmpeg(job, command, total_us)
        key = f"{clip.id}/download-v{job.version}.mp4"
        size = await asyncio.to_thread(self._put_output, key, output)
        await asyncio.to_thread(self._done, job, key, size)

    def _put_output(self, key: str, path: Path) -> int:
        """Store a job's output file under ``key``; its size in bytes."""
        size = path.stat().st_size
        try:
            self.store.put(key, path, "video/mp4")
        except StoreError as exc:
            raise JobFailed(f"the clip store refused the file: {exc}") from exc
        return size

    def _done(self, job: Job, key: str, size: int) -> None:
        with self.db.begin() as conn:
            _set_done(conn, job, key, size)

    def _clip(self, clip_id: str) -> Clip | None:
        with self.db.connect() as conn:
            return find_clip(conn, clip_id)

    async def _cut(self, job: Job) -> None:
        tools = self.tools
        if tools is None:
            raise JobFailed("FFmpeg is not installed")
        url = str(job.params["recording_url"])
        start_s, end_s = float(job.params["start_s"]), float(job.params["end_s"])
        output = self.job_temp(job, ".out.mp4")
        await self._ffmpeg(
            job,
            cut_command(tools, url, start_s, end_s, output, self.limits),
            round((end_s - start_s) * 1e6),
        )
        try:
            found = await asyncio.to_thread(self.check_probe, tools, output)
        except Invalid as exc:
            raise JobFailed(exc.detail) from exc
        key = f"{job.clip_id}/source.mp4"
        size = await asyncio.to_thread(self._put_output, key, output)

        def finish() -> None:
            with self.db.begin() as conn:
                update_clip(
                    conn,
                    job.clip_id,
                    status=ClipStatus.READY.value,
                    video_key=key,
                    content_type=found.content_type,
                    size_bytes=size,
                    duration_ms=found.duration_ms,
                    width=found.width,
                    height=found.height,
                    has_audio=found.has_audio,
                )
                _set_done(conn, job, key, size)

        await asyncio.to_thread(finish)

    async def _ffmpeg(self, job: Job, command: list[str], total_us: int) -> None:
        """Run FFmpeg, turning ``-progress`` lines into the job's percent; bounded in time.
        Cancelled (the app stopping), it kills FFmpeg: the row stays running and the job runs
        again at the next start."""
        timeout_s = max(MIN_JOB_TIMEOUT_S, JOB_TIMEOUT_PER_MEDIA_S * total_us / 1e6)
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=child_bounds(self.limits),
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        errors = asyncio.create_task(_tail(proc.stderr))
        last_pct, last_write = 0, 0.0
        try:
            async with asyncio.timeout(timeout_s):
                async for raw in proc.stdout:
                    pct = progress_pct(raw.decode(errors="replace"), total_us)
                    now = time.monotonic()
                    if pct is not None and pct > last_pct and now - last_write >= PROGRESS_WRITE_S:
                        last_pct, last_write = pct, now
                        await asyncio.to_thread(self._progress, job.id, min(pct, 99))
                code = await proc.wait()
        except TimeoutError as exc:
            raise JobFailed(f"FFmpeg took longer than {timeout_s:.0f} s") from exc
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            stderr = await errors
        if code != 0:
            lines = stderr.decode(errors="replace").strip().splitlines()
            raise JobFailed(lines[-1] if lines else f"FFmpeg exited with {code}")

    def _progress(self, job_id: str, pct: int) -> None:
        with self.db.begin() as conn:
            set_job(conn, job_id, progress_pct=pct)


def _set_done(conn: Connection, job: Job, key: str, size: int) -> None:
    set_job(
        conn,
        job.id,
        status=JobStatus.DONE.value,
        progress_pct=100,
        output_key=key,
        output_bytes=size,
    )


async def _tail(stream: asyncio.StreamReader) -> bytes:
    kept = b""
    while chunk := await stream.read(STDERR_KEEP_BYTES):
        kept = (kept + chunk)[-STDERR_KEEP_BYTES:]
    return kept

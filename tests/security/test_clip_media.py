"""Hostile media against the clip pipeline, uploaded over HTTP to a real `giftwave serve` on
SQLite and PostgreSQL (one server per backend for the module).

The attack: a 750 KB one-second H.264 file declaring 16000x16000 frames was accepted (its
decode check peaked near 860 MB) and one watermarked download of it, which any logged-in
person can start, took ~7.6 GB of FFmpeg's memory and held the only render worker.

- A creator uploads files made to be cheap to send and dear to decode: 16000x16000 frames,
  the same with a header that says 320x240, 1000 frames a second, a header claiming ten hours,
  40 streams, MJPEG video, 10-bit H.264. Each is refused 422 with the code naming the limit
  (problem+json, the limit in it), and nothing is stored.
- A clip within the limits but larger than a download needs (2560x1440) renders scaled down
  to fit 1080p, by FFmpeg children that run under an address-space ceiling; a clip whose
  header says one second while its frames run on for ten hours renders one second and the end
  card, instead of holding the worker until the job's timeout.
- A creator sends a burst of uploads at once, so that their probes (each a bounded child)
  multiply the ceiling: no more than two are probed at a time; the rest wait their turn.

The files are made here with FFmpeg from lavfi sources (a second or so in all), and patched
where a header must lie.
"""

from __future__ import annotations

import struct
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from clipfiles import ffprobe, make_video, tool
from serverproc import ServerProcess, one_server, register_over_http

from giftwave.clips.media import END_CARD_S
from giftwave.db.urls import DatabaseUrl

PROBLEM_JSON: Final = "application/problem+json"
MAKE_TIMEOUT_S: Final = 60
JOB_WAIT_S: Final = 60.0  # the unbounded render of the ten-hour file ran to its 120 s timeout
POLL_S: Final = 0.02
TEN_HOURS_S: Final = 36_000
# The server's defaults, as docs/clips.md states them.
MAX_SIDE_PX: Final = 4096
MAX_PIXELS: Final = 4096 * 2160
MAX_FPS: Final = 120
MAX_STREAMS: Final = 8
MAX_BIT_DEPTH: Final = 8
RENDER_BOX: Final = (1920, 1080)
MEMORY_CEILING_BYTES: Final = 2048 * 1024**2
PROBES_AT_ONCE: Final = 2
BURST: Final = 6


# --- hostile files ------------------------------------------------------------------------


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [tool("ffmpeg"), "-nostdin", "-v", "error", "-y", *args],
        check=True,
        capture_output=True,
        timeout=MAKE_TIMEOUT_S,
    )


def _encode(path: Path, source: str, extra: tuple[str, ...], pix_fmt: str) -> Path:
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        source,
        *extra,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-threads",
        "1",
        "-pix_fmt",
        pix_fmt,
        str(path),
    )
    return path


_CONTAINER_BOXES: Final = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of every MP4 box in data[start:end], the nested ones too."""
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        assert size >= 8, "a 64-bit box size: not in these small files"
        yield kind, at, at + size
        if kind in _CONTAINER_BOXES:
            yield from _boxes(data, at + 8, at + size)
        elif kind == b"stsd":  # version and flags, then the count of sample entries
            yield from _boxes(data, at + 16, at + size)
        at += size


def _patch(path: Path, edit: Any) -> Path:
    data = bytearray(path.read_bytes())
    edit(data, list(_boxes(bytes(data), 0, len(data))))
    path.write_bytes(bytes(data))
    return path


def _claim_size(width: int, height: int) -> Any:
    """The sample entry and the track header say width x height (the H.264 inside does not)."""

    def edit(data: bytearray, boxes: list[tuple[bytes, int, int]]) -> None:
        for kind, start, end in boxes:
            if kind == b"avc1":
                data[start + 32 : start + 36] = struct.pack(">HH", width, height)
            elif kind == b"tkhd":  # 16.16 fixed point, the box's last eight bytes
                data[end - 8 : end] = struct.pack(">II", width << 16, height << 16)

    return edit


def _claim_one_second(data: bytearray, boxes: list[tuple[bytes, int, int]]) -> None:
    """The movie, track and media headers all say one second (version 0 boxes)."""
    movie_scale = 0
    for kind, start, _ in boxes:
        assert kind not in (b"mvhd", b"tkhd", b"mdhd") or data[start + 8] == 0
        if kind == b"mvhd":
            (movie_scale,) = struct.unpack(">I", data[start + 20 : start + 24])
            data[start + 24 : start + 28] = struct.pack(">I", movie_scale)
        elif kind == b"tkhd":
            assert movie_scale, "mvhd comes first"
            data[start + 28 : start + 32] = struct.pack(">I", movie_scale)
        elif kind == b"mdhd":
            data[start + 24 : start + 28] = data[start + 20 : start + 24]  # its own time scale


@dataclass(frozen=True)
class Hostile:
    name: str
    path: Path
    code: str
    limit: dict[str, Any]


@dataclass(frozen=True)
class Files:
    refused: list[Hostile]
    large: Path  # within the limits, larger than a download needs
    runs_on: Path  # says one second, frames for ten hours


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    d = tmp_path_factory.mktemp("hostile")
    huge = _encode(d / "huge.mp4", "nullsrc=s=16000x16000:r=1:d=1", ("-frames:v", "1"), "yuv420p")
    liar = d / "liar.mp4"
    liar.write_bytes(huge.read_bytes())
    _patch(liar, _claim_size(320, 240))
    fast = _encode(d / "fast.mp4", "testsrc2=s=64x48:r=1000:d=1", (), "yuv420p")
    # Two frames ten hours apart: a real ten-hour timeline in a 4 KB file.
    spread = ("-frames:v", "2", "-vf", f"setpts=N*{TEN_HOURS_S}/TB", "-fps_mode", "passthrough")
    long = _encode(d / "long.mp4", "testsrc2=s=64x48:r=1", spread, "yuv420p")
    runs_on = _patch(
        _encode(d / "runs_on.mp4", "testsrc2=s=64x48:r=1", spread, "yuv420p"), _claim_one_second
    )
    tiny = _encode(d / "tiny.mp4", "testsrc2=s=64x48:r=25:d=1", (), "yuv420p")
    many = d / "many.mp4"
    _ffmpeg("-i", str(tiny), *("-map", "0:v") * 40, "-c", "copy", str(many))
    mjpeg = d / "mjpeg.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=1", "-c:v", "mjpeg", str(mjpeg))
    deep = _encode(d / "deep.mp4", "testsrc2=s=64x48:r=25:d=1", (), "yuv420p10le")
    dims = {"max_side_px": MAX_SIDE_PX, "max_pixels": MAX_PIXELS}
    return Files(
        refused=[
            Hostile("16000x16000 frames", huge, "clip_too_large_dimensions", dims),
            Hostile("a header saying 320x240", liar, "clip_too_large_dimensions", dims),
            Hostile("1000 frames a second", fast, "clip_frame_rate_too_high", {"max_fps": MAX_FPS}),
            Hostile("ten hours", long, "clip_too_long", {"max_duration_s": 180}),
            Hostile("40 streams", many, "clip_too_many_streams", {"max_streams": MAX_STREAMS}),
            Hostile("MJPEG video", mjpeg, "clip_codec_not_allowed", {}),
            Hostile("10-bit H.264", deep, "clip_bit_depth_too_high", {"max_bit_depth": 8}),
        ],
        large=make_video(d / "large.mp4", seconds=1, size="2560x1440"),
        runs_on=runs_on,
    )


# --- the server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    server: ServerProcess
    store: Path
    tmp: Path


@pytest.fixture(scope="module")
def site(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    store, tmp = tmp_path_factory.mktemp("clips"), tmp_path_factory.mktemp("cliptmp")
    with one_server(
        module_bare_db_url,
        tmp_path_factory.mktemp("logs"),
        GIFTWAVE_CLIP_STORE=str(store),
        GIFTWAVE_CLIP_TMP_DIR=str(tmp),
    ) as server:
        yield Site(server, store, tmp)


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.server.base_url, timeout=30.0, trust_env=False) as c:
        yield c


def _register(client: httpx.Client, role: str) -> dict[str, str]:
    return register_over_http(client, role, "cm", "correct horse battery staple")[1]


def _upload(client: httpx.Client, auth: dict[str, str], path: Path) -> httpx.Response:
    return client.post(
        "/v1/clips",
        data={"title": path.stem},
        files={"file": (path.name, path.read_bytes(), "video/mp4")},
        headers=auth,
    )


def _files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --- what the server's FFmpeg children may use -------------------------------------------


def _ffmpeg_children(parent: int, names: tuple[str, ...] = ("ffmpeg",)) -> list[int]:
    """The FFmpeg (or ffprobe) processes the server started, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        name, rest = stat[stat.find("(") + 1 : stat.rfind(")")], stat[stat.rfind(")") + 2 :]
        if name in names and int(rest.split()[1]) == parent:
            found.append(int(entry.name))
    return found


def _address_space_limit(pid: int) -> str | None:
    """The soft "Max address space" of a process ("unlimited" or bytes), None once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/limits").read_text().splitlines()
    except OSError:
        return None
    [line] = [x for x in lines if x.startswith("Max address space")]
    return line.split()[3]


def _render(
    client: httpx.Client, auth: dict[str, str], clip_id: str, server_pid: int
) -> tuple[dict[str, Any], dict[int, str]]:
    """Ask for the download and follow it until it ends; meanwhile, the address-space limit
    of every FFmpeg child the server runs."""
    r = client.post(f"/v1/clips/{clip_id}/downloads", headers=auth)
    assert r.status_code == 202, r.text
    job_id, limits, job = r.json()["id"], {}, {}
    deadline = time.monotonic() + JOB_WAIT_S
    while time.monotonic() < deadline:
        for pid in _ffmpeg_children(server_pid):
            if (found := _address_space_limit(pid)) is not None:
                limits[pid] = found
        job = client.get(f"/v1/clips/{clip_id}/downloads/{job_id}", headers=auth).json()
        if job["status"] in ("done", "failed"):
            return job, limits
        time.sleep(POLL_S)
    raise AssertionError(f"the render did not end within {JOB_WAIT_S} s: {job}")


def _download(client: httpx.Client, auth: dict[str, str], job: dict[str, Any], path: Path) -> Path:
    got = client.get(job["url"], headers=auth)
    assert got.status_code == 200, got.text
    path.write_bytes(got.content)
    return path


# --- the attacks --------------------------------------------------------------------------


def test_media_made_to_be_dear_to_decode_is_refused_naming_the_limit(
    client: httpx.Client, site: Site, files: Files
) -> None:
    creator = _register(client, "creator")
    stored = _files_in(site.store)
    for hostile in files.refused:
        r = _upload(client, creator, hostile.path)
        assert r.status_code == 422, f"{hostile.name}: {r.status_code} {r.text}"
        assert r.headers["content-type"].startswith(PROBLEM_JSON), hostile.name
        body = r.json()
        assert body["code"] == hostile.code, f"{hostile.name}: {body}"
        assert {k: body.get(k) for k in hostile.limit} == hostile.limit, f"{hostile.name}: {body}"
    assert _files_in(site.store) == stored  # nothing stored
    assert _files_in(site.tmp) == []  # no temporary file left behind
    mine = client.get("/v1/me/clips", headers=creator)
    assert mine.status_code == 200
    assert mine.json() == []


def test_a_render_is_scaled_down_cut_to_its_length_and_run_under_a_memory_ceiling(
    client: httpx.Client, site: Site, files: Files, tmp_path: Path
) -> None:
    creator, fan = _register(client, "creator"), _register(client, "viewer")

    r = _upload(client, creator, files.large)
    assert r.status_code == 201, r.text
    assert (r.json()["width"], r.json()["height"]) == (2560, 1440)  # accepted as it is
    job, limits = _render(client, fan, r.json()["id"], site.server.pid)
    assert job["status"] == "done", job
    rendered = ffprobe(_download(client, fan, job, tmp_path / "large.mp4"))
    assert (rendered.width, rendered.height) == RENDER_BOX
    assert rendered.duration_s == pytest.approx(1 + END_CARD_S, abs=0.25)
    assert limits, "no FFmpeg child was seen while rendering"
    assert set(limits.values()) == {str(MEMORY_CEILING_BYTES)}, limits

    r = _upload(client, creator, files.runs_on)
    assert r.status_code == 201, r.text  # its header says one second
    assert r.json()["duration_s"] == pytest.approx(1.0, abs=0.1)
    started = time.monotonic()
    job, _ = _render(client, fan, r.json()["id"], site.server.pid)
    assert job["status"] == "done", job
    rendered = ffprobe(_download(client, fan, job, tmp_path / "runs_on.mp4"))
    assert rendered.duration_s == pytest.approx(1 + END_CARD_S, abs=0.25)
    assert time.monotonic() - started < JOB_WAIT_S


def test_a_burst_of_uploads_is_probed_a_few_at_a_time(site: Site, files: Files) -> None:
    with httpx.Client(base_url=site.server.base_url, timeout=60.0, trust_env=False) as c:
        creator = _register(c, "creator")

    def send(_: int) -> httpx.Response:
        with httpx.Client(base_url=site.server.base_url, timeout=60.0, trust_env=False) as c:
            return _upload(c, creator, files.large)

    most = 0
    with ThreadPoolExecutor(BURST) as pool:
        sent = [pool.submit(send, n) for n in range(BURST)]
        while not all(f.done() for f in sent):
            running = _ffmpeg_children(site.server.pid, ("ffmpeg", "ffprobe"))
            most = max(most, len(running))
        answers = [f.result() for f in sent]
    for r in answers:  # each waited its turn, or was told when to come back
        if r.status_code == 503:
            assert r.json()["code"] == "clip_probes_busy", r.text
            assert int(r.headers["retry-after"]) >= 1
        else:
            assert r.status_code == 201, r.text
    assert any(r.status_code == 201 for r in answers)
    assert 1 <= most <= PROBES_AT_ONCE, f"{most} FFmpeg children at once"

"""Clips on both databases through the in-process app: uploads (and every bad one refused with
nothing written), the video served with range requests, reactions, reposts and the shared
collection, clip share links, watermarked downloads as background jobs (reused, counted,
switched off by the creator), a render interrupted by a stop runs again, cuts of a recording
served over HTTP on 127.0.0.1, and a server without FFmpeg."""

from __future__ import annotations

import asyncio
import http.server
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from clipfiles import Media, ffprobe, make_media, make_video
from economy_client import AppFactory, Person, assert_problem, economy_app, register
from sqlalchemy import func, select

from giftwave.clips.jobs import JobKind, insert_job, set_job
from giftwave.clips.media import END_CARD_S
from giftwave.db.engine import make_engine
from giftwave.db.tables import clips
from giftwave.db.urls import DatabaseUrl

__all__ = ["economy_app"]

POLL_S = 0.1
JOB_WAIT_S = 60.0


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, str]:
    store, tmp = tmp_path / "store", tmp_path / "tmp"
    return {"clip_store": str(store), "clip_tmp_dir": str(tmp)}


def files_in(folder: str) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file())


async def upload(
    person: Person, path: Path, title: str = "A tiny clip", **kw: Any
) -> httpx.Response:
    data = await asyncio.to_thread(path.read_bytes)
    return await person.client.post(
        "/v1/clips",
        data={"title": title},
        files={"file": (path.name, data, "application/octet-stream")},
        headers=person.auth,
        **kw,
    )


async def uploaded(person: Person, path: Path, title: str = "A tiny clip") -> dict[str, Any]:
    r = await upload(person, path, title)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def wait_job(person: Person, clip_id: str, job_id: str) -> dict[str, Any]:
    seen: list[int] = []
    for _ in range(int(JOB_WAIT_S / POLL_S)):
        r = await person.get(f"/v1/clips/{clip_id}/downloads/{job_id}")
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        seen.append(job["progress_pct"])
        if job["status"] in ("done", "failed"):
            assert seen == sorted(seen), f"progress went backwards: {seen}"
            return job
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"job {job_id} not finished after {JOB_WAIT_S} s: {job}")


def clip_rows(db_url: DatabaseUrl) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(clips)).scalar_one())
    finally:
        engine.dispose()


async def test_upload_plays_with_ranges_and_takes_reactions_and_reposts(
    economy_app: AppFactory, media: Media, dirs: dict[str, str]
) -> None:
    async with economy_app(cookie_secure=False, **dirs) as client:
        creator = await register(client, "creator")
        fan, other = await register(client), await register(client)
        client.cookies.clear()  # the client itself is an anonymous visitor; people use tokens
        clip = await uploaded(creator, media.mp4, "Piano, 2 seconds")
        assert clip["status"] == "ready"
        assert clip["content_type"] == "video/mp4"
        assert (clip["width"], clip["height"]) == (320, 240)
        assert clip["duration_s"] == pytest.approx(2.0, abs=0.1)
        assert clip["download_count"] == 0  # the creator sees it
        data = media.mp4.read_bytes()
        assert clip["size_bytes"] == len(data)

        video = f"/v1/clips/{clip['id']}/video"
        whole = await client.get(video)
        assert whole.status_code == 200
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.content == data
        part = await client.get(video, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        assert part.content == data[100:200]
        tail = await client.get(video, headers={"Range": "bytes=-10"})
        assert (tail.status_code, tail.content) == (206, data[-10:])
        open_end = await client.get(video, headers={"Range": f"bytes={len(data) - 5}-"})
        assert (open_end.status_code, open_end.content) == (206, data[-5:])
        past_end = await client.get(video, headers={"Range": f"bytes={len(data) + 9}-"})
        assert_problem(past_end, 416, "range_not_satisfiable")
        assert past_end.headers["content-range"] == f"bytes */{len(data)}"
        backwards = await client.get(video, headers={"Range": "bytes=9-2"})
        assert (backwards.status_code, backwards.content) == (200, data)
        for ignored in ("bytes=0-1,4-5", "items=0-3", "bytes=a-b"):  # all of it, not 400
            got = await client.get(video, headers={"Range": ignored})
            assert (got.status_code, got.content) == (200, data), ignored
        # A player resuming a file that changed gets all of it (If-Range, RFC 9110 13.1.5).
        etag = whole.headers["etag"]
        same = await client.get(video, headers={"Range": "bytes=0-3", "If-Range": etag})
        assert (same.status_code, same.content) == (206, data[:4])
        changed = await client.get(video, headers={"Range": "bytes=0-3", "If-Range": '"old"'})
        assert (changed.status_code, changed.content) == (200, data)

        webm = await uploaded(creator, media.webm, "The same in WebM")
        got = await client.get(f"/v1/clips/{webm['id']}/video", headers={"Range": "bytes=0-3"})
        assert got.status_code == 206
        assert got.headers["content-type"] == "video/webm"
        assert got.content == media.webm.read_bytes()[:4]

        path = f"/v1/clips/{clip['id']}/reactions"
        assert (await client.put(f"{path}/fire")).status_code == 401
        first = await fan.client.put(f"{path}/fire", headers=fan.auth)
        again = await fan.client.put(f"{path}/fire", headers=fan.auth)
        assert first.json()["reactions"]["fire"] == again.json()["reactions"]["fire"] == 1
        both = (await other.client.put(f"{path}/fire", headers=other.auth)).json()
        assert both["reactions"]["fire"] == 2
        assert both["my_reactions"] == ["fire"]
        heart = (await fan.client.put(f"{path}/heart", headers=fan.auth)).json()
        assert heart["my_reactions"] == ["fire", "heart"]
        assert_problem(
            await fan.client.put(f"{path}/poop", headers=fan.auth), 422, "invalid_reaction"
        )
        left = (await fan.client.delete(f"{path}/fire", headers=fan.auth)).json()
        assert left["reactions"]["fire"] == 1
        assert left["my_reactions"] == ["heart"]
        seen = (await fan.get(f"/v1/clips/{clip['id']}")).json()
        assert seen["reactions"]["fire"] == 1
        assert seen["download_count"] is None  # only the creator sees it

        reposted = await fan.post(f"/v1/clips/{clip['id']}/repost")
        assert reposted.json() == {"clip_id": clip["id"], "reposted": True, "reposts": 1}
        assert (await fan.post(f"/v1/clips/{clip['id']}/repost")).json()["reposts"] == 1
        await fan.post(f"/v1/clips/{webm['id']}/repost")
        shared = (await client.get(f"/v1/users/{fan.user['handle']}/shared")).json()
        assert [s["clip"]["id"] for s in shared] == [webm["id"], clip["id"]]  # newest first
        undone = await fan.client.delete(f"/v1/clips/{clip['id']}/repost", headers=fan.auth)
        assert undone.json()["reposts"] == 0
        shared = (await client.get(f"/v1/users/{fan.user['handle'].upper()}/shared")).json()
        assert [s["clip"]["id"] for s in shared] == [webm["id"]]
        assert_problem(await client.get("/v1/users/nobody_here/shared"), 404, "user_not_found")
        assert_problem(await fan.post("/v1/clips/cl_nope/repost"), 404, "clip_not_found")

        link = await fan.post(
            "/v1/shares", {"target_kind": "clip", "target_id": clip["id"], "channel": "copy"}
        )
        assert link.status_code == 201, link.text
        opened = await client.get(f"/s/{link.json()['code']}")
        assert opened.status_code == 302
        assert opened.headers["location"] == f"/clips/{clip['id']}?via={link.json()['code']}"
        page = await client.get(opened.headers["location"])
        assert page.status_code == 200
        assert f'src="/v1/clips/{clip["id"]}/video"' in page.text
        assert f"@<bdi>{fan.user['handle']}</bdi>" in page.text  # "Shared by @fan"


async def test_bad_uploads_are_refused_and_leave_nothing_behind(
    economy_app: AppFactory, media: Media, dirs: dict[str, str], db_url: DatabaseUrl
) -> None:
    limit = media.mp4.stat().st_size - 1000
    async with economy_app(
        cookie_secure=False, clip_max_bytes=limit, clip_max_duration_s=1.5, **dirs
    ) as client:
        creator = await register(client, "creator")
        viewer = await register(client)

        assert_problem(await upload(creator, media.mp4), 413, "clip_too_large")

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: caught while reading
            boundary = b"--gwtest"
            yield boundary + b'\r\nContent-Disposition: form-data; name="title"\r\n\r\nBig\r\n'
            yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"'
            yield b"\r\nContent-Type: video/mp4\r\n\r\n"
            for _ in range(limit // 4096 + 2):
                yield b"\0" * 4096
            yield b"\r\n" + boundary + b"--\r\n"

        streamed = await client.post(
            "/v1/clips",
            content=chunked(),
            headers={**creator.auth, "Content-Type": "multipart/form-data; boundary=gwtest"},
        )
        assert "content-length" not in streamed.request.headers
        assert_problem(streamed, 413, "clip_too_large")

        for bad in (media.text, media.truncated_mp4, media.audio):
            assert_problem(await upload(creator, bad), 422, "not_a_video")
        long_clip = make_video(Path(dirs["clip_store"]).parent / "long.mp4", size="64x48")
        assert_problem(await upload(creator, long_clip), 422, "clip_too_long")
        assert_problem(await upload(viewer, media.webm), 403, "not_a_creator")
        assert_problem(await upload(creator, media.webm, title=""), 422, "invalid_title")
        no_file = await client.post(
            "/v1/clips", files={"title": (None, "no file")}, headers=creator.auth
        )
        assert_problem(no_file, 422, "invalid_upload")
        assert_problem(
            await client.post("/v1/clips", content=b"x", headers=creator.auth),
            415,
            "unsupported_media_type",
        )
        assert files_in(dirs["clip_tmp_dir"]) == []  # no temporary file left behind
        assert files_in(dirs["clip_store"]) == []  # nothing stored
        assert (await creator.get("/v1/me/clips")).json() == []
    assert clip_rows(db_url) == 0


async def test_a_watermarked_download_is_rendered_once_counted_and_can_be_switched_off(
    economy_app: AppFactory, media: Media, dirs: dict[str, str], tmp_path: Path
) -> None:
    async with economy_app(cookie_secure=False, **dirs) as client:
        creator = await register(client, "creator")
        fan = await register(client)
        clip = await uploaded(creator, media.silent_mp4)
        asked = await fan.post(f"/v1/clips/{clip['id']}/downloads")
        assert asked.status_code == 202, asked.text
        job = await wait_job(fan, clip["id"], asked.json()["id"])
        assert job["status"] == "done", job
        assert job["progress_pct"] == 100
        again = await creator.post(f"/v1/clips/{clip['id']}/downloads")
        assert again.status_code == 200  # the same render, reused
        assert again.json()["id"] == job["id"]

        part = await client.get(job["url"], headers={"Range": "bytes=10-19"})
        assert part.status_code == 206
        whole = await fan.get(job["url"])
        assert whole.status_code == 200
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.headers["content-disposition"].startswith("attachment;")
        assert whole.content[10:20] == part.content
        saved = tmp_path / "download.mp4"
        saved.write_bytes(whole.content)
        source, rendered = ffprobe(media.silent_mp4), ffprobe(saved)
        assert rendered.duration_s == pytest.approx(source.duration_s + END_CARD_S, abs=0.25)
        assert (rendered.width, rendered.height, rendered.video_codec) == (320, 240, "h264")
        assert rendered.has_audio  # silence under a silent clip, so every player is happy
        mine = (await creator.get(f"/v1/clips/{clip['id']}")).json()
        assert mine["download_count"] == 1  # the range from byte 10 was not a new download

        assert_problem(
            await fan.client.patch(
                f"/v1/clips/{clip['id']}", json={"downloads_enabled": False}, headers=fan.auth
            ),
            403,
            "not_your_clip",
        )
        off = await client.patch(
            f"/v1/clips/{clip['id']}", json={"downloads_enabled": False}, headers=creator.auth
        )
        assert off.json()["downloads_enabled"] is False
        assert_problem(
            await fan.post(f"/v1/clips/{clip['id']}/downloads"), 403, "downloads_disabled"
        )
        assert_problem(await fan.get(job["url"]), 403, "downloads_disabled")
        assert (await creator.get(f"/v1/clips/{clip['id']}")).json()["download_count"] == 1
        assert_problem(await fan.post("/v1/clips/cl_nope/downloads"), 404, "clip_not_found")
        assert files_in(dirs["clip_tmp_dir"]) == []


async def test_a_render_cut_short_by_a_stop_runs_again_at_the_next_start(
    economy_app: AppFactory, media: Media, dirs: dict[str, str], db_url: DatabaseUrl
) -> None:
    async with economy_app(cookie_secure=False, **dirs) as client:
        creator = await register(client, "creator")
        clip = await uploaded(creator, media.mp4)
        token = creator.auth
    # What a process killed mid-render leaves: a running row, a partial file in the temporary
    # folder and a partial object in the store under the job's output key.
    engine = make_engine(db_url)
    key = f"{clip['id']}/download-v1.mp4"
    partial = Path(dirs["clip_tmp_dir"]) / "cj_crashed.1f2e3d4c.out.mp4"
    partial.write_bytes(b"half a render")
    (Path(dirs["clip_store"]) / key).write_bytes(b"half an upload")
    with engine.begin() as conn:
        insert_job(conn, "cj_crashed", clip["id"], JobKind.RENDER, 1, {})
        set_job(conn, "cj_crashed", status="running", progress_pct=40, output_key=key)
    engine.dispose()

    async with economy_app(cookie_secure=False, **dirs) as client:
        assert not partial.exists()  # deleted before the job runs again
        creator = Person(client, creator.user, token["Authorization"].split()[1])
        job = await wait_job(creator, clip["id"], "cj_crashed")
        assert job["status"] == "done", job
        got = await creator.get(job["url"])
        saved = Path(dirs["clip_tmp_dir"]).parent / "again.mp4"
        saved.write_bytes(got.content)
        assert ffprobe(saved).duration_s == pytest.approx(2.0 + END_CARD_S, abs=0.25)
        asked = await creator.post(f"/v1/clips/{clip['id']}/downloads")
        assert asked.json()["id"] == "cj_crashed"  # one job per clip and version


@contextmanager
def recording_server(folder: Path) -> Iterator[str]:
    """A tiny HTTP server on 127.0.0.1 serving ``folder`` (a stream's recordings)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Quiet, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def wait_clip(person: Person, clip_id: str) -> dict[str, Any]:
    for _ in range(int(JOB_WAIT_S / POLL_S)):
        clip: dict[str, Any] = (await person.get(f"/v1/clips/{clip_id}")).json()
        if clip["status"] != "processing":
            return clip
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"clip {clip_id} still processing after {JOB_WAIT_S} s")


async def test_a_clip_cut_from_a_recording_url(
    economy_app: AppFactory, dirs: dict[str, str], tmp_path: Path
) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    make_video(recordings / "stream.mp4", seconds=5, faststart=True)
    with recording_server(recordings) as base:
        body = {
            "title": "Best bit",
            "recording_url": f"{base}/stream.mp4",
            "start_s": 1.0,
            "end_s": 3.5,
        }
        # No allow-list: only public addresses. The server must not fetch what only it can
        # reach (this test's own server on loopback included), and writes nothing for it.
        async with economy_app(cookie_secure=False, **dirs) as client:
            creator = await register(client, "creator")
            for url in (
                f"{base}/stream.mp4",
                "http://localhost:9/x.mp4",
                "http://10.1.2.3/x.mp4",
                "http://192.168.0.10/x.m3u8",
                "http://169.254.169.254/latest/meta-data/",
                "http://[::1]:9/x.mp4",
                "http://[::ffff:127.0.0.1]/x.mp4",
                "http://0.0.0.0/x.mp4",
            ):
                refused = await creator.post("/v1/clips", body | {"recording_url": url})
                assert_problem(refused, 422, "recording_url_not_allowed")
            assert_problem(
                await creator.post("/v1/clips", body | {"recording_url": "http://[::1/x.mp4"}),
                422,
                "invalid_recording_url",
            )
            assert (await creator.get("/v1/me/clips")).json() == []
        # An operator allows their own recording host (here, loopback) by name.
        async with economy_app(
            cookie_secure=False, clip_recording_hosts=("127.0.0.1",), **dirs
        ) as client:
            creator = await register(client, "creator")
            client.cookies.clear()  # the client is an anonymous visitor; the creator has a token
            other = body | {"recording_url": "http://localhost:9/x.mp4"}
            assert_problem(await creator.post("/v1/clips", other), 422, "recording_url_not_allowed")
            r = await creator.post("/v1/clips", body)
            assert r.status_code == 202, r.text
            assert r.json()["status"] == "processing"
            assert r.json()["job_id"].startswith("cj_")
            anonymous = await client.get(f"/v1/clips/{r.json()['id']}")
            assert_problem(anonymous, 404, "clip_not_found")  # not public until ready
            clip = await wait_clip(creator, r.json()["id"])
            assert clip["status"] == "ready", clip
            assert clip["duration_s"] == pytest.approx(2.5, abs=0.2)
            video = await client.get(clip["video_url"])
            saved = tmp_path / "cut.mp4"
            saved.write_bytes(video.content)
            assert ffprobe(saved).duration_s == pytest.approx(2.5, abs=0.2)

            missing = await creator.post("/v1/clips", body | {"recording_url": f"{base}/gone.mp4"})
            failed = await wait_clip(creator, missing.json()["id"])
            assert failed["status"] == "failed"
            assert failed["error"]
            assert_problem(
                await creator.post("/v1/clips", body | {"recording_url": "file:///etc/passwd"}),
                422,
                "invalid_recording_url",
            )
            assert_problem(
                await creator.post("/v1/clips", body | {"end_s": 0.5}), 422, "invalid_range"
            )
            assert_problem(
                await creator.post("/v1/clips", body | {"end_s": 400}), 422, "clip_too_long"
            )
            huge = body | {"recording_url": f"{base}/{'x' * 9000}.mp4"}
            assert_problem(await creator.post("/v1/clips", huge), 413, "payload_too_large")
            assert files_in(dirs["clip_tmp_dir"]) == []


def test_ffmpeg_is_installed() -> None:
    """Clips need FFmpeg: a machine without it fails here, loudly (never a skip)."""
    assert shutil.which("ffmpeg") is not None, "install the Debian package ffmpeg"
    assert shutil.which("ffprobe") is not None, "install the Debian package ffmpeg"


async def test_without_ffmpeg_clips_say_so_and_the_rest_runs(
    economy_app: AppFactory,
    media: Media,
    dirs: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a server where ffmpeg is not installed
    async with economy_app(cookie_secure=False, **dirs) as client:
        assert "install the Debian package ffmpeg" in caplog.text
        creator = await register(client, "creator")
        assert_problem(await upload(creator, media.mp4), 503, "ffmpeg_unavailable")
        assert (await client.get("/healthz")).status_code == 200
    assert files_in(dirs["clip_tmp_dir"]) == []

"""The clip stores behind one interface, each against the real thing: a local folder, and an
S3-compatible HTTP server on 127.0.0.1 (moto's ThreadedMotoServer) through boto3, the way the
Stripe provider is tested at its boundary. Then the app on both databases with its clips in
that S3 server: upload, ranged playback, a watermarked download rendered from the bucket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from clipfiles import Media, ffprobe, make_media
from economy_client import AppFactory, assert_problem, economy_app, register
from moto.server import ThreadedMotoServer
from test_clips_api import files_in, upload, wait_job

from giftwave.clips.media import END_CARD_S
from giftwave.clips.storage import ClipStore, LocalStore, ObjectMissing, S3Store, open_store

__all__ = ["economy_app"]

BUCKET = "giftwave-clips"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env:
        # moto accepts any credentials; boto3 wants some, from its usual environment variables.
        env.setenv("AWS_ACCESS_KEY_ID", "giftwave-test")
        env.setenv("AWS_SECRET_ACCESS_KEY", "giftwave-test-secret")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket=BUCKET
        )
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: str) -> Iterator[ClipStore]:
    if request.param == "file":
        yield open_store(f"file://{tmp_path}/clips")
    else:
        yield open_store(f"s3://{BUCKET}/t-{tmp_path.name}?endpoint={s3_endpoint}")


def read_all(store: ClipStore, key: str, start: int, end: int) -> bytes:
    return b"".join(store.read(key, start, end))


def test_open_store_picks_the_backend_by_url(tmp_path: Path, s3_endpoint: str) -> None:
    assert isinstance(open_store(str(tmp_path / "a")), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}/b"), LocalStore)
    s3 = open_store(f"s3://{BUCKET}/p?endpoint={s3_endpoint}")
    assert isinstance(s3, S3Store)
    assert s3.describe() == f"s3://{BUCKET}/p at {s3_endpoint}"
    with pytest.raises(ValueError, match="unknown clip store"):
        open_store("ftp://example.org/clips")


def test_a_store_keeps_files_and_answers_byte_ranges(store: ClipStore, media: Media) -> None:
    data = media.mp4.read_bytes()
    store.put("cl_x/source.mp4", media.mp4, "video/mp4")
    assert store.size("cl_x/source.mp4") == len(data)
    assert read_all(store, "cl_x/source.mp4", 0, len(data) - 1) == data
    assert read_all(store, "cl_x/source.mp4", 1000, 1999) == data[1000:2000]
    assert read_all(store, "cl_x/source.mp4", len(data) - 3, len(data) - 1) == data[-3:]
    big = list(store.read("cl_x/source.mp4", 0, len(data) - 1))
    assert max(len(c) for c in big) <= 256 * 1024  # streamed in chunks
    store.put("cl_x/source.mp4", media.webm, "video/webm")  # replaced whole
    assert store.size("cl_x/source.mp4") == media.webm.stat().st_size
    store.delete("cl_x/source.mp4")
    with pytest.raises(ObjectMissing):
        store.size("cl_x/source.mp4")
    store.delete("cl_x/source.mp4")  # deleting what is not there is fine


async def test_the_app_keeps_clips_in_s3_and_renders_from_there(
    economy_app: AppFactory, media: Media, s3_endpoint: str, tmp_path: Path
) -> None:
    prefix = f"app-{tmp_path.name}"
    tmp = tmp_path / "tmp"
    async with economy_app(
        cookie_secure=False,
        clip_store=f"s3://{BUCKET}/{prefix}?endpoint={s3_endpoint}",
        clip_tmp_dir=str(tmp),
    ) as client:
        creator = await register(client, "creator")
        client.cookies.clear()
        made = await upload(creator, media.mp4)
        assert made.status_code == 201, made.text
        clip = made.json()
        listed = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
        keys = [o["Key"] for o in listed.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
        assert keys == [f"{prefix}/{clip['id']}/source.mp4"]
        data = await asyncio.to_thread(media.mp4.read_bytes)
        part = await client.get(clip["video_url"], headers={"Range": "bytes=16-47"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 16-47/{len(data)}"
        assert part.content == data[16:48]
        assert_problem(
            await client.get(clip["video_url"], headers={"Range": f"bytes={len(data)}-"}),
            416,
            "range_not_satisfiable",
        )

        asked = await creator.post(f"/v1/clips/{clip['id']}/downloads")
        job = await wait_job(creator, clip["id"], asked.json()["id"])
        assert job["status"] == "done", job
        saved = tmp_path / "download.mp4"
        saved.write_bytes((await creator.get(job["url"])).content)
        assert ffprobe(saved).duration_s == pytest.approx(2.0 + END_CARD_S, abs=0.25)
        assert files_in(str(tmp)) == []  # the source copied from the bucket was deleted

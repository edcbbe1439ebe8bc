"""A server killed (SIGKILL) in the middle of rendering a watermarked download: the next start
deletes the partial render and runs the job again from the beginning, and the file it serves
is whole (the clip plus the end card). On both databases."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from clipfiles import ffprobe, make_video
from liveclient import person
from serverproc import ServerGroup, giftwave_env, migrate

from giftwave.clips.media import END_CARD_S
from giftwave.db.urls import DatabaseUrl

SOURCE_S = 20  # long enough that the render is still running when the server is killed
WAIT_S = 90.0


async def _job(
    http: httpx.AsyncClient, auth: dict[str, str], clip: str, job: str
) -> dict[str, Any]:
    r = await http.get(f"/v1/clips/{clip}/downloads/{job}", headers=auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_render_killed_midway_runs_again_at_the_next_start(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    source = make_video(tmp_path / "long.mp4", seconds=SOURCE_S, size="640x360")
    tmp = tmp_path / "tmp"
    env = giftwave_env(bare_db_url)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        GIFTWAVE_CLIP_STORE=str(tmp_path / "store"),
        GIFTWAVE_CLIP_TMP_DIR=str(tmp),
    )
    migrate(env)
    with ServerGroup(tmp_path, env) as servers:
        [first] = servers.start("a")
        async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as http:
            _, token = await person(http, "creator")
            auth = {"Authorization": f"Bearer {token}"}
            data = await asyncio.to_thread(source.read_bytes)
            r = await http.post(
                "/v1/clips",
                data={"title": "Long enough"},
                files={"file": ("long.mp4", data, "video/mp4")},
                headers=auth,
            )
            assert r.status_code == 201, r.text
            clip = r.json()["id"]
            job = (await http.post(f"/v1/clips/{clip}/downloads", headers=auth)).json()["id"]
            deadline = time.monotonic() + WAIT_S
            while (await _job(http, auth, clip, job))["progress_pct"] < 5:
                assert time.monotonic() < deadline, "the render never started"
                await asyncio.sleep(0.05)
        [partial] = tmp.glob(f"{job}.*.out.mp4")  # FFmpeg is writing it
        first.kill()

        [again] = servers.start("a-restarted")
        async with httpx.AsyncClient(base_url=again.base_url, timeout=30) as http:
            deadline = time.monotonic() + WAIT_S
            while (found := await _job(http, auth, clip, job))["status"] != "done":
                assert found["status"] in ("queued", "running"), found
                assert time.monotonic() < deadline, f"not rendered again: {found}"
                await asyncio.sleep(0.2)
            got = await http.get(found["url"], headers=auth)
            assert got.status_code == 200
        saved = tmp_path / "saved.mp4"
        await asyncio.to_thread(saved.write_bytes, got.content)
        assert ffprobe(saved).duration_s == pytest.approx(SOURCE_S + END_CARD_S, abs=0.3)
        assert not partial.exists()  # the partial render was deleted
        assert sorted(p.name for p in tmp.iterdir()) == []

"""Security headers (#16, item 11): every page runs under a Content-Security-Policy that allows
only this site's own script files, and nothing on any page trips it.

An injected ``<script>`` (had one got through the templates) must not run; a page must not be
framed to trick a click (clickjacking), except the embed; no answer is content-sniffed into a
script; no path leaks to other sites in a Referer. Chromium walks every page as the people who
see it (anonymous, viewer, creator, admin), the viewer page playing a real HLS stream from
another local server, listening for ``securitypolicyviolation`` and CSP console messages; the
headers are read on pages, the JSON API, static files, problems, and both fast lanes. No
storage is involved: SQLite only."""

from __future__ import annotations

import asyncio
import functools
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import chromium
from clipfiles import make_video, tool
from liveclient import person
from offsite_stub import NO_DNS, stub_offsite
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, expect
from serverproc import ADMIN_TOKEN, HOST, ServerProcess, one_server

from giftwave.bench.scratch import scratch_database

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# Recorded in the page before any of its own script runs; Playwright's init scripts are not
# the page's, so the policy does not apply to this one.
LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
"""
# Chromium plays HLS itself (media-src); other browsers get hls.js (a worker from a blob, a
# MediaSource): the anonymous visitor's browser says it cannot, so both paths are walked.
NO_NATIVE_HLS = """
const canPlay = HTMLMediaElement.prototype.canPlayType;
HTMLMediaElement.prototype.canPlayType = function (type) {
  return type.includes("mpegurl") ? "" : canPlay.call(this, type);
};
"""
NEEDED = ("script-src 'self'", "object-src 'none'", "base-uri 'none'", "default-src 'self'")


class _Hls(SimpleHTTPRequestHandler):
    """The HLS files, readable by a page of another origin (as Owncast and CDNs serve them)."""

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _hls_stream(folder: Path) -> Path:
    """A 3-second VOD playlist of 1-second H.264 segments."""
    subprocess.run(
        [
            tool("ffmpeg"), "-v", "error", "-y", "-f", "lavfi",
            "-i", "testsrc2=size=320x240:rate=25:duration=3",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25",
            "-f", "hls", "-hls_time", "1", "-hls_list_size", "0", "-hls_playlist_type", "vod",
            str(folder / "live.m3u8"),
        ],
        check=True,
        timeout=60,
        capture_output=True,
    )  # fmt: skip
    return folder / "live.m3u8"


@dataclass(frozen=True, slots=True)
class Site:
    server: ServerProcess
    pages: dict[str, list[str]]  # who -> the paths they open
    logins: dict[str, str]  # who -> handle
    share_code: str
    stream_id: str
    viewer: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    files = tmp_path_factory.mktemp("media")
    _hls_stream(files)
    video = make_video(files / "tiny.mp4", seconds=1)
    hls = ThreadingHTTPServer((HOST, 0), functools.partial(_Hls, directory=str(files)))
    threading.Thread(target=hls.serve_forever, daemon=True).start()
    playback = f"http://{HOST}:{hls.server_address[1]}/live.m3u8"
    clip_env = {"GIFTWAVE_CLIP_STORE": str(files / "store"), "GIFTWAVE_CLIP_TMP_DIR": str(files)}
    base = f"sqlite:///{tmp_path_factory.mktemp('headers')}/base.db"
    try:
        with (
            scratch_database(base, "proc") as db,
            one_server(db, tmp_path_factory.mktemp("logs"), **clip_env) as server,
        ):
            yield asyncio.run(_prepare(server, playback, video.read_bytes()))
    finally:
        hls.shutdown()
        hls.server_close()


async def _user(http: httpx.AsyncClient, role: str) -> tuple[int, dict[str, str], str]:
    user_id, token = await person(http, role)
    auth = {"Authorization": f"Bearer {token}"}
    me = await http.get("/v1/me", headers=auth)
    return user_id, auth, str(me.json()["handle"])


async def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    r = await response
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


async def _prepare(server: ServerProcess, playback: str, video: bytes) -> Site:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        _, viewer, viewer_handle = await _user(http, "viewer")
        creator_id, creator, creator_handle = await _user(http, "creator")
        # The viewer's home then has its "Following" section.
        await _ok(http.put(f"/v1/me/following/{creator_id}", headers=viewer), 201)
        admin_id, _, admin_handle = await _user(http, "viewer")
        await _ok(
            http.patch(f"/v1/admin/users/{admin_id}", json={"role": "admin"}, headers=OPERATOR)
        )
        stream = await _ok(
            http.post(
                "/v1/streams", json={"title": "CSP", "playback_url": playback}, headers=creator
            ),
            201,
        )
        key_url = (await _ok(http.get("/v1/creators/me/overlay", headers=creator)))["url"]
        clip = await _ok(
            http.post(
                "/v1/clips",
                data={"title": "Headers"},
                files={"file": ("tiny.mp4", video, "application/octet-stream")},
                headers=creator,
            ),
            201,
        )
        order = await _ok(
            http.post("/v1/topups", json={"coins": 100, "idempotency_key": "csp"}, headers=viewer),
            201,
        )
        share = {"target_kind": "stream", "target_id": stream["id"], "channel": "copy"}
        code = (await _ok(http.post("/v1/shares", json=share, headers=viewer), 201))["code"]
    sid = stream["id"]
    overlay = key_url[key_url.index("/overlay/") :]
    checkout = order["checkout_url"][order["checkout_url"].index("/sandbox/") :]
    return Site(
        server,
        pages={
            "anonymous": [
                "/", "/login", "/signup", f"/live/{sid}", f"/embed/{sid}", overlay,
                f"/clips/{clip['id']}", f"/@{creator_handle}", "/no-such-page",
            ],
            "viewer": [
                "/shop", "/me/reach", checkout, f"/live/{sid}", f"/s/{code}", "/studio",
                f"/@{creator_handle}", "/",
            ],
            "creator": ["/studio", "/studio/earnings", "/studio/economy", "/studio/clips"],
            "admin": ["/admin", "/admin/economy", "/admin/risk"],
        },
        logins={"viewer": viewer_handle, "creator": creator_handle, "admin": admin_handle},
        share_code=code,
        stream_id=sid,
        viewer=viewer,
    )  # fmt: skip


async def _context(browser: Browser, site: Site, who: str) -> BrowserContext:
    context = await browser.new_context()
    await context.add_init_script(LISTEN)
    if who == "anonymous":
        await context.add_init_script(NO_NATIVE_HLS)
    if who in site.logins:
        login = {"login": site.logins[who], "password": PASSWORD}
        r = await context.request.post(f"{site.server.base_url}/v1/auth/login", data=login)
        assert r.ok, await r.text()
    return context


async def _walk(browser: Browser, site: Site, who: str) -> dict[str, list[str]]:
    """Every page ``who`` opens: the violations it reported, or its missing headers."""
    context = await _context(browser, site, who)
    offsite = await stub_offsite(context)
    page = await context.new_page()
    console: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            console.append(message.text)

    page.on("console", on_console)
    found: dict[str, list[str]] = {}
    for path in site.pages[who]:
        response = await page.goto(site.server.base_url + path)
        assert response is not None
        headers = await response.all_headers()
        policy = headers.get("content-security-policy", "")
        problems = [f"header: {d}" for d in NEEDED if d not in policy]
        framing = "http: https:" if path.startswith("/embed/") else "'none'"
        if f"frame-ancestors {framing}" not in policy:
            problems.append(f"header: frame-ancestors {framing}")
        if headers.get("x-content-type-options") != "nosniff":
            problems.append("header: nosniff")
        if headers.get("referrer-policy") != "strict-origin-when-cross-origin":
            problems.append("header: referrer-policy")
        if path.startswith(("/live/", "/embed/", "/overlay/", "/s/")):
            await page.wait_for_selector("body[data-connected='1']", timeout=10_000)
        if path.startswith("/live/"):  # the HLS stream plays: hls.js, its worker, MediaSource
            await expect(page.locator("#video")).to_be_visible(timeout=10_000)
        await page.wait_for_load_state("networkidle")
        problems += await page.evaluate("window.__csp") + console
        console.clear()
        if problems:
            found[path] = problems
    assert offsite == [], offsite
    await context.close()
    return found


async def test_no_page_trips_the_policy_and_every_page_has_the_headers(site: Site) -> None:
    async with chromium(NO_DNS) as browser:
        walks = await asyncio.gather(*(_walk(browser, site, who) for who in site.pages))
    assert {k: v for walk in walks for k, v in walk.items()} == {}


async def test_the_policy_stops_an_injected_script(site: Site) -> None:
    """The control: a script put into a page (as an injection would) does not run, and the
    listener above sees the violation, so an empty list there means something."""
    async with chromium(NO_DNS) as browser:
        context = await _context(browser, site, "anonymous")
        page = await context.new_page()
        await page.goto(site.server.base_url + "/")
        await page.evaluate(
            """() => { const s = document.createElement("script");
                s.textContent = "document.body.dataset.owned = '1'"; document.body.append(s);
                const a = document.createElement("div");
                a.setAttribute("onclick", "document.body.dataset.owned = '2'"); a.click(); }"""
        )
        await page.wait_for_function("window.__csp.length >= 2", timeout=5_000)
        assert await page.evaluate("document.body.dataset.owned") is None
        await context.close()


async def test_api_static_problem_and_fast_lane_answers_carry_nosniff(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.server.base_url, timeout=30) as http:
        answers = {
            "json": await http.get("/v1/gifts"),
            "static": await http.get("/static/site.js"),
            "problem": await http.get("/v1/streams/st_missing"),
            "share redirect": await http.get(f"/s/{site.share_code}"),
            "gift": await http.post(
                f"/v1/streams/{site.stream_id}/gifts",
                json={"gift_id": "rose", "idempotency_key": "nosniff"},
                headers=site.viewer,  # no coins: a problem, answered by the fast lane
            ),
        }
    for what, r in answers.items():
        assert r.headers.get("x-content-type-options") == "nosniff", what
        assert r.headers.get("referrer-policy") == "strict-origin-when-cross-origin", what
    assert answers["share redirect"].status_code == 302
    assert answers["gift"].status_code == 402, answers["gift"].text

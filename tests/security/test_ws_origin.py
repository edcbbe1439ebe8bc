"""Cross-site WebSocket hijacking, in a real browser (Debian's Chromium) against a real server.

The visitor is logged in on the site. A page of another origin (another port of 127.0.0.1,
served by a tiny HTTP server in the test: same host, so the browser sends the site's cookie
with the page's socket) opens the room's WebSocket. It may watch; it may not act: its gift and
its chat answer ``origin_not_allowed`` and nothing is charged. The same script on the site's
own origin acts, and so does a page of the origin the operator allows
(``GIFTWAVE_ALLOWED_ORIGINS``). The origin check holds for clients that are not browsers too.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import httpx
import orjson
import pytest
import websockets
from browser import chromium
from liveclient import go_live, person
from serverproc import ADMIN_TOKEN, ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

pytestmark = pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)

COINS: Final = 1000
PASSWORD: Final = "pw-pw-pw-pw"  # liveclient.person's
# Opens the room's socket from the page it runs in, as that page's own script would, and keeps
# every server message in window.room.
OPEN: Final = """async (url) => {
  const room = { frames: [], acks: {} };
  window.room = room;
  const ws = new WebSocket(url);
  room.ws = ws;
  ws.onmessage = (m) => {
    const message = JSON.parse(m.data);
    if (message.ack !== undefined) room.acks[message.ack] = message;
    else room.frames.push(message);
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("the socket did not open"));
  });
  for (let i = 0; i < 100 && !room.frames.length; i++) await new Promise((r) => setTimeout(r, 50));
  return room.frames[0]?.events?.[0]?.type;
}"""
# A gift and a chat line as the visitor: their answers.
ACT: Final = """async (key) => {
  const room = window.room;
  const gift = { id: "gift", cmd: "send_gift", gift_id: "rose", idempotency_key: key };
  room.ws.send(JSON.stringify(gift));
  room.ws.send(JSON.stringify({ id: "chat", cmd: "chat", text: "hello from " + location.origin }));
  for (let i = 0; i < 200 && !(room.acks.gift && room.acks.chat); i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  return [room.acks.gift, room.acks.chat];
}"""
SAID: Final = """(text) => window.room.frames.some(
  (f) => f.events.some((e) => e.type === "chat" && e.text === text))"""


class _Blank(BaseHTTPRequestHandler):
    """Any path: an empty page of this origin, for the test's script to run in."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>another site</title><p>nothing to see"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # quiet


class _Site:
    """A tiny web server on 127.0.0.1 and a free port: another origin of the same host."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Blank)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Site:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def sites(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, _Site, _Site]]:
    """The giftwave server, an attacker's site and a partner's site the operator allows."""
    with _Site() as attacker, _Site() as partner:
        allowed = json.dumps([partner.origin])
        log_dir = tmp_path_factory.mktemp("origin")
        with one_server(module_bare_db_url, log_dir, GIFTWAVE_ALLOWED_ORIGINS=allowed) as server:
            yield server, attacker, partner


async def _visitor(http: httpx.AsyncClient) -> tuple[str, str, str]:
    """A live stream, and a viewer with coins: their login name and bearer token."""
    _, creator = await person(http, "creator")
    stream = await go_live(http, creator, "origins")
    viewer_id, token = await person(http, "viewer")
    r = await http.post(
        f"/v1/admin/users/{viewer_id}/coins",
        json={"coins": COINS, "idempotency_key": f"origin-{viewer_id}"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert r.status_code == 200, r.text
    me = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    return stream, str(me.json()["handle"]), token


async def _coins(http: httpx.AsyncClient, token: str) -> int:
    r = await http.get("/v1/me/wallet", headers={"Authorization": f"Bearer {token}"})
    return int(r.json()["coins"])


async def test_a_page_of_another_origin_watches_but_cannot_act_as_the_visitor(
    sites: tuple[ServerProcess, _Site, _Site],
) -> None:
    server, attacker, partner = sites
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        stream, handle, token = await _visitor(http)
        ws_url = base.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
        context = await browser.new_context()
        login = await context.request.post(
            f"{base}/v1/auth/login", data={"login": handle, "password": PASSWORD}
        )
        assert login.ok, await login.text()  # the visitor's browser holds the session cookie

        evil = await context.new_page()
        await evil.goto(f"{attacker.origin}/free-coins.html")
        assert await evil.evaluate(OPEN, ws_url) == "snapshot"  # it watches
        gift, chat = await evil.evaluate(ACT, "evil-1")
        assert gift["error"]["code"] == "origin_not_allowed", gift
        assert chat["error"]["code"] == "origin_not_allowed", chat
        assert await _coins(http, token) == COINS  # nothing charged

        own = await context.new_page()
        await own.goto(f"{base}/live/{stream}")
        assert await own.evaluate(OPEN, ws_url) == "snapshot"
        gift, chat = await own.evaluate(ACT, "own-1")
        assert gift["result"]["coins"] == 1, gift
        assert chat["result"]["sent"] is True, chat
        assert await _coins(http, token) == COINS - 1
        # The attacker's socket still receives the room's frames: the site's own chat line.
        text = f"hello from {base}"
        await evil.wait_for_function(f"({SAID})({orjson.dumps(text).decode()})", timeout=5000)

        friend = await context.new_page()
        await friend.goto(f"{partner.origin}/embed.html")
        assert await friend.evaluate(OPEN, ws_url) == "snapshot"
        gift, _ = await friend.evaluate(ACT, "partner-1")
        assert gift["result"]["coins"] == 1, gift  # an allowed origin acts
        await context.close()


async def _answer(url: str, headers: dict[str, str]) -> dict[str, Any]:
    async with websockets.connect(url, additional_headers=headers) as ws:
        await asyncio.wait_for(ws.recv(), 5)  # the snapshot
        await ws.send(orjson.dumps({"id": 1, "cmd": "like"}).decode())
        while True:
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            if message.get("ack") == 1:
                return dict(message)


async def test_the_cookie_acts_only_with_the_sites_own_or_an_allowed_origin(
    sites: tuple[ServerProcess, _Site, _Site],
) -> None:
    server, attacker, partner = sites
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        stream, _, token = await _visitor(http)
    url = server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
    cookie = {"Cookie": f"gw_session={token}"}
    own = server.base_url
    for origin, code in (
        (attacker.origin, "origin_not_allowed"),
        ("null", "origin_not_allowed"),  # a sandboxed frame, a file
        ("http://127.0.0.1.evil.example", "origin_not_allowed"),
        (f"{own}/path", "origin_not_allowed"),  # not an origin at all
        (f"https://127.0.0.1:{server.port}", None),  # behind a proxy that ends TLS
        (partner.origin, None),
    ):
        answer = await _answer(url, {**cookie, "Origin": origin})
        if code is None:
            assert answer["result"] == {"liked": 1}, (origin, answer)
        else:
            assert answer["error"]["code"] == code, (origin, answer)
    # No Origin at all: not a browser, so no page of another site behind it.
    assert (await _answer(url, cookie))["result"] == {"liked": 1}

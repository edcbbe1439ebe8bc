"""The home page's "Trending now" against a real server: a gift, a viewer who opens a room and
likes it (over the room's WebSocket, as the browser does), and the creator's own visits, which
count for nothing; the list is in score order above "Live now", in English, Spanish and Arabic.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import websockets
from liveclient import Client, as_user, person
from serverproc import ADMIN_TOKEN, one_server

from giftwave.db.urls import DatabaseUrl

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def _live(http: httpx.AsyncClient, title: str) -> tuple[str, str]:
    _, token = await person(http, "creator")
    r = await http.post(
        "/v1/streams", json={"title": title}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"]), token


def _trending_titles(html: str) -> list[str]:
    section = html.split('class="discover trending"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'<span class="trending-title"><bdi>([^<]*)</bdi>', section)


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_the_home_page_shows_trending_streams_in_order(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            home = await http.get("/")
            assert "Trending now" not in home.text  # nothing has happened yet
            gifted, _ = await _live(http, "Gifted stream")
            liked, liked_token = await _live(http, "Liked stream")
            quiet, quiet_token = await _live(http, "Quiet stream")
            fan_id, fan_token = await person(http, "viewer")
            r = await http.post(
                f"/v1/admin/users/{fan_id}/coins",
                json={"coins": 1000, "idempotency_key": "home"},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
            r = await http.post(
                f"/v1/streams/{gifted}/gifts",
                json={"gift_id": "doughnut", "idempotency_key": "home-d"},
                headers={"Authorization": f"Bearer {fan_token}"},
            )
            assert r.status_code == 201, r.text  # 30 coins: 30 points

            ws = server.base_url.replace("http://", "ws://")
            fan_url = await as_user(http, f"{ws}/v1/streams/{liked}/ws", fan_token)
            async with websockets.connect(fan_url) as s:
                fan = Client(s)
                await fan.recv()  # the snapshot: the fan is a new viewer (5 points)
                for n in range(3):  # three taps, one like (0.5 points)
                    ack = await fan.command(id=n, cmd="like", count=5)
                    assert ack["result"] == {"liked": 5}, ack
            async with websockets.connect(f"{ws}/v1/streams/{liked}/ws") as s:
                await Client(s).recv()  # the same again, anonymous: another new viewer (5)
            for stream, token in ((quiet, quiet_token), (liked, liked_token)):
                creator_url = await as_user(http, f"{ws}/v1/streams/{stream}/ws", token)
                async with websockets.connect(creator_url) as s:
                    creator = Client(s)
                    await creator.recv()  # the creator in their own room: nothing
                    ack = await creator.command(id=1, cmd="like", count=1)
                    assert ack["result"] == {"liked": 1}, ack

            r = await http.get("/v1/trending")
            assert r.status_code == 200, r.text
            ranked = [(t["stream_id"], t["score"]) for t in r.json()]
            assert [s for s, _ in ranked] == [gifted, liked]  # the quiet one is not there
            assert ranked[0][1] == pytest.approx(30, rel=1e-3)
            assert ranked[1][1] == pytest.approx(10.5, rel=1e-3)

            page = (await http.get("/", headers={"Accept": "text/html"})).text
            assert page.index(">Trending now</h2>") < page.index("<h1>Live now</h1>")
            assert _trending_titles(page) == ["Gifted stream", "Liked stream"]
            spanish = (await http.get("/?lang=es")).text
            assert "En tendencia" in spanish
            assert _trending_titles(spanish) == ["Gifted stream", "Liked stream"]
            arabic = (await http.get("/?lang=ar")).text
            assert 'dir="rtl"' in arabic
            assert "الرائج الآن" in arabic
            assert _trending_titles(arabic) == ["Gifted stream", "Liked stream"]

"""Follows on both databases: following and unfollowing are idempotent, oneself and unknown
users are refused, a blocked account cannot follow, changes are rate-limited per user, counts
and the following list agree; "people you follow who are watching" with real sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import websockets
from economy_client import ADMIN, AppFactory, assert_problem, economy_app, register
from liveclient import Client, as_user, go_live, person
from serverproc import one_server
from sqlalchemy import func, select

from giftwave.api.state import app_services
from giftwave.db.tables import follows
from giftwave.db.urls import DatabaseUrl
from giftwave.social.follows import FOLLOW_CHANGES_BURST

__all__ = ["economy_app"]


async def test_follow_unfollow_counts_and_list(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        fan = await register(client)
        luna = await register(client, "creator")
        max_ = await register(client, "creator")
        url = f"/v1/me/following/{luna.id}"

        first = await client.put(url, headers=fan.auth)
        assert first.status_code == 201, first.text
        assert first.json() == {
            "user_id": luna.id,
            "handle": luna.user["handle"],
            "following": True,
            "followers": 1,
        }
        again = await client.put(url, headers=fan.auth)
        assert again.status_code == 200  # idempotent: still one row, still one follower
        assert again.json()["followers"] == 1
        assert (
            await client.put(f"/v1/me/following/{max_.id}", headers=fan.auth)
        ).status_code == 201
        # luna follows max too: max has two followers, luna one
        assert (
            await client.put(f"/v1/me/following/{max_.id}", headers=luna.auth)
        ).status_code == 201

        count = await client.get(f"/v1/users/{max_.id}/followers/count")  # public: no login
        assert count.json() == {"user_id": max_.id, "followers": 2}
        assert (await client.get(f"/v1/users/{luna.id}/followers/count")).json()["followers"] == 1

        listed = (await fan.get("/v1/me/following")).json()
        assert listed["total"] == 2
        assert [f["handle"] for f in listed["following"]] == [
            max_.user["handle"],  # most recently followed first
            luna.user["handle"],
        ]
        assert (await fan.get("/v1/me/following", params={"limit": 1})).json()["total"] == 2

        gone = await client.delete(url, headers=fan.auth)
        assert gone.status_code == 204
        assert (await client.delete(url, headers=fan.auth)).status_code == 204  # idempotent
        assert (await client.get(f"/v1/users/{luna.id}/followers/count")).json()["followers"] == 0
        assert [f["user_id"] for f in (await fan.get("/v1/me/following")).json()["following"]] == [
            max_.id
        ]
        with app_services(client.app).db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(follows)).scalar_one() == 2


async def test_refusals_change_nothing(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        fan = await register(client)
        luna = await register(client, "creator")

        assert_problem(
            await client.put(f"/v1/me/following/{fan.id}", headers=fan.auth),
            422,
            "cannot_follow_self",
        )
        assert_problem(
            await client.put("/v1/me/following/987654321", headers=fan.auth), 404, "user_not_found"
        )
        assert_problem(
            await client.delete("/v1/me/following/987654321", headers=fan.auth),
            404,
            "user_not_found",
        )
        assert_problem(
            await client.get("/v1/users/987654321/followers/count"), 404, "user_not_found"
        )
        assert_problem(await client.put(f"/v1/me/following/{luna.id}"), 401, "unauthorized")
        assert_problem(await client.get("/v1/me/following"), 401, "unauthorized")
        r = await client.patch(
            f"/v1/admin/users/{fan.id}", json={"status": "blocked"}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
        assert_problem(
            await client.put(f"/v1/me/following/{luna.id}", headers=fan.auth),
            403,
            "account_blocked",
        )
        with app_services(client.app).db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(follows)).scalar_one() == 0


async def test_follow_changes_are_rate_limited(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        fan = await register(client)
        other = await register(client)
        luna = await register(client, "creator")
        url = f"/v1/me/following/{luna.id}"
        for i in range(FOLLOW_CHANGES_BURST):  # follow, unfollow, follow…: each one a change
            r = await (client.put if i % 2 == 0 else client.delete)(url, headers=fan.auth)
            assert r.status_code in (200, 201, 204), r.text
        refused = await client.put(url, headers=fan.auth)
        problem = assert_problem(refused, 429, "follow_rate_limited")
        assert int(refused.headers["Retry-After"]) >= 1, problem
        # the limit is the caller's own: someone else still follows at once
        assert (await client.put(url, headers=other.auth)).status_code == 201
        # the refused follow wrote nothing: the burst ended on an unfollow
        assert (await client.get(f"/v1/users/{luna.id}/followers/count")).json()["followers"] == 1


async def _count(http: httpx.AsyncClient, stream: str, token: str) -> dict[str, object]:
    r = await http.get(
        f"/v1/streams/{stream}/friends-watching", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


async def _until(http: httpx.AsyncClient, stream: str, token: str, count: int) -> dict[str, object]:
    """Socket closes reach the server a moment after the client's."""
    body: dict[str, object] = {}
    for _ in range(50):
        body = await _count(http, stream, token)
        if body["count"] == count:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"count never {count}: {body}")


async def test_friends_watching_with_real_sockets(bare_db_url: DatabaseUrl, tmp_path: Path) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            _, fan = await person(http, "viewer")
            ana_id, ana = await person(http, "viewer")
            bo_id, bo = await person(http, "viewer")
            _, stranger = await person(http, "viewer")
            _, creator = await person(http, "creator")
            stream = await go_live(http, creator, "friends")
            for followee in (ana_id, bo_id):
                r = await http.put(
                    f"/v1/me/following/{followee}", headers={"Authorization": f"Bearer {fan}"}
                )
                assert r.status_code == 201, r.text
            anon = await http.get(f"/v1/streams/{stream}/friends-watching")
            assert anon.status_code == 401
            missing = await http.get(
                "/v1/streams/nope/friends-watching", headers={"Authorization": f"Bearer {fan}"}
            )
            assert missing.status_code == 404
            assert await _count(http, stream, fan) == {"count": 0, "handles": []}

            ws_url = server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
            listed = (
                await http.get("/v1/me/following", headers={"Authorization": f"Bearer {fan}"})
            ).json()["following"]
            handle = {f["user_id"]: f["handle"] for f in listed}
            ana_handle = handle[ana_id]
            async with (
                websockets.connect(await as_user(http, ws_url, ana)) as ana_tab1,
                websockets.connect(await as_user(http, ws_url, ana)) as ana_tab2,
                websockets.connect(await as_user(http, ws_url, stranger)) as stranger_ws,
                websockets.connect(ws_url) as anon_ws,
            ):
                for ws in (ana_tab1, ana_tab2, stranger_ws, anon_ws):
                    await Client(ws).recv()  # the snapshot: the socket is in the room
                # ana has two tabs open: she counts once; the stranger and anonymous do not count
                assert await _count(http, stream, fan) == {"count": 1, "handles": [ana_handle]}
                # the stranger follows nobody: nobody they follow is watching
                assert (await _count(http, stream, stranger))["count"] == 0
                async with websockets.connect(await as_user(http, ws_url, bo)) as bo_ws:
                    await Client(bo_ws).recv()
                    both = await _count(http, stream, fan)
                    assert both["count"] == 2
                    assert sorted(both["handles"]) == sorted([ana_handle, handle[bo_id]])  # type: ignore[arg-type]
                await _until(http, stream, fan, 1)  # bo left
                await ana_tab1.close()
                still = await _until(http, stream, fan, 1)  # one of ana's tabs is still open
                assert still["handles"] == [ana_handle]
                await ana_tab2.close()
                await _until(http, stream, fan, 0)  # her last tab closed: she is gone

                # a followed user who is unfollowed stops counting
                async with websockets.connect(await as_user(http, ws_url, bo)) as bo_ws:
                    await Client(bo_ws).recv()
                    await _until(http, stream, fan, 1)
                    r = await http.delete(
                        f"/v1/me/following/{bo_id}", headers={"Authorization": f"Bearer {fan}"}
                    )
                    assert r.status_code == 204
                    assert (await _count(http, stream, fan))["count"] == 0

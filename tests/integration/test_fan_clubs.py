"""Fan clubs against a real `giftwave serve` on SQLite AND PostgreSQL (one server per backend
for the module): naming (validated, creators only), joining and leaving twice, the entry gift
both-or-neither, points exact against a random sequence of gifts, members-only chat refusing a
non-member with its stable code and badges on a member's lines, a subscribers-only chat for a
creator without a club (the chat mode is the creator's), and the attacks (another creator's
club, unknown ids, oversized names, no login, too fast)."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from economy_client import assert_problem
from liveclient import Client, as_user, go_live, person
from serverproc import ADMIN_TOKEN, ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl
from giftwave.social.clubs import NAME_MAX_CHARS

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("clubs")) as proc:
        yield proc


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(r: httpx.Response, status: int, code: str) -> None:
    assert_problem(r, status, code)


async def _coins(http: httpx.AsyncClient, user_id: int, coins: int) -> None:
    r = await http.post(
        f"/v1/admin/users/{user_id}/coins",
        json={"coins": coins, "idempotency_key": f"grant{next(_ids)}"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text


async def _balance(http: httpx.AsyncClient, token: str) -> int:
    r = await http.get("/v1/me/wallet", headers=auth(token))
    assert r.status_code == 200, r.text
    return int(r.json()["coins"])


async def _chat(client: Client) -> dict[str, Any]:
    return await client.command(id=f"c{next(_ids)}", cmd="chat", text="hello club")


async def test_name_join_leave_remove(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        luna_id, luna = await person(http, "creator")
        _, max_ = await person(http, "creator")
        ana_id, ana = await person(http, "viewer")
        _, bo = await person(http, "viewer")

        problem(await http.get(f"/v1/creators/{luna_id}/club"), 404, "club_not_found")
        r = await http.put("/v1/me/club", json={"name": "Luna Lovers"}, headers=auth(luna))
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "Luna Lovers"
        assert r.json()["chat_mode"] == "everyone"
        assert r.json()["level_points"][0] == 0
        renamed = await http.put("/v1/me/club", json={"name": " Lunatics "}, headers=auth(luna))
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["name"] == "Lunatics"

        # Bad names, other people, no login: typed refusals and nothing changed.
        for bad in ("", "x", "a" * (NAME_MAX_CHARS + 1), "bad\nname", "tab\tname", "\u202e"):
            problem(
                await http.put("/v1/me/club", json={"name": bad}, headers=auth(luna)),
                422,
                "invalid_club_name",
            )
        problem(
            await http.put("/v1/me/club", json={"name": "x" * 10_000}, headers=auth(luna)),
            422,
            "invalid_request",
        )
        problem(
            await http.put("/v1/me/club", json={"name": "Mine"}, headers=auth(ana)),
            403,
            "not_a_creator",
        )
        problem(
            await http.put(
                "/v1/me/club", json={"name": "Ok", "entry_gift_id": "nope"}, headers=auth(luna)
            ),
            404,
            "gift_not_found",
        )
        problem(await http.put("/v1/me/club", json={"name": "Anon"}), 401, "unauthorized")
        assert (await http.get(f"/v1/creators/{luna_id}/club")).json()["name"] == "Lunatics"

        # Joining twice: the same membership, 201 then 200.
        first = await http.post(f"/v1/creators/{luna_id}/club/members", json={}, headers=auth(ana))
        assert first.status_code == 201, first.text
        again = await http.post(f"/v1/creators/{luna_id}/club/members", json={}, headers=auth(ana))
        assert again.status_code == 200, again.text
        assert again.json()["joined_at_us"] == first.json()["joined_at_us"]
        assert first.json()["level"] == 1
        problem(
            await http.post(f"/v1/creators/{2**61}/club/members", json={}, headers=auth(ana)),
            404,
            "club_not_found",
        )
        problem(
            await http.post(f"/v1/creators/{luna_id}/club/members", json={}, headers=auth(luna)),
            422,
            "invalid_request",
        )
        listed = (await http.get("/v1/me/club/members", headers=auth(luna))).json()
        assert listed["total"] == 1
        assert [m["user_id"] for m in listed["members"]] == [ana_id]
        problem(await http.get("/v1/me/club/members", headers=auth(ana)), 403, "not_a_creator")
        problem(await http.get("/v1/me/club/members", headers=auth(max_)), 404, "club_not_found")

        # Leaving twice: 204 both times; rejoining starts fresh.
        for _ in range(2):
            r = await http.delete(f"/v1/creators/{luna_id}/club/members/me", headers=auth(ana))
            assert r.status_code == 204, r.text
        problem(
            await http.get(f"/v1/creators/{luna_id}/club/members/me", headers=auth(ana)),
            404,
            "club_member_not_found",
        )
        rejoined = await http.post(
            f"/v1/creators/{luna_id}/club/members", json={}, headers=auth(ana)
        )
        assert rejoined.status_code == 201, rejoined.text
        assert rejoined.json()["joined_at_us"] > first.json()["joined_at_us"]

        # Removing: the creator only; an unknown member is 404; a removed member may rejoin.
        problem(
            await http.delete(f"/v1/me/club/members/{ana_id}", headers=auth(bo)),
            403,
            "not_a_creator",
        )
        problem(
            await http.delete(f"/v1/me/club/members/{ana_id}", headers=auth(max_)),
            404,
            "club_not_found",
        )
        problem(
            await http.delete(f"/v1/me/club/members/{2**61}", headers=auth(luna)),
            404,
            "club_member_not_found",
        )
        r = await http.delete(f"/v1/me/club/members/{ana_id}", headers=auth(luna))
        assert r.status_code == 204, r.text
        problem(
            await http.delete(f"/v1/me/club/members/{ana_id}", headers=auth(luna)),
            404,
            "club_member_not_found",
        )
        assert (await http.get("/v1/me/club/members", headers=auth(luna))).json()["total"] == 0
        r = await http.post(f"/v1/creators/{luna_id}/club/members", json={}, headers=auth(ana))
        assert r.status_code == 201, r.text


async def test_entry_gift_both_or_neither(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        luna_id, luna = await person(http, "creator")
        _, max_ = await person(http, "creator")
        ana_id, ana = await person(http, "viewer")
        r = await http.put(
            "/v1/me/club",
            json={"name": "Doughnuts", "entry_gift_id": "doughnut"},
            headers=auth(luna),
        )
        assert r.status_code == 201, r.text
        stream = await go_live(http, luna, "club night")
        other = await go_live(http, max_, "elsewhere")
        url = f"/v1/creators/{luna_id}/club/members"

        problem(await http.post(url, json={}, headers=auth(ana)), 422, "club_entry_needs_stream")
        problem(
            await http.post(url, json={"stream_id": other}, headers=auth(ana)),
            422,
            "club_entry_needs_stream",
        )
        # No coins: the gift is refused, and no membership is left behind.
        body = {"stream_id": stream, "idempotency_key": "j1"}
        problem(await http.post(url, json=body, headers=auth(ana)), 402, "insufficient_coins")
        problem(await http.get(f"{url}/me", headers=auth(ana)), 404, "club_member_not_found")
        assert (await http.get("/v1/me/club/members", headers=auth(luna))).json()["total"] == 0

        await _coins(http, ana_id, 100)
        joined = await http.post(url, json=body, headers=auth(ana))
        assert joined.status_code == 201, joined.text
        assert await _balance(http, ana) == 70
        # The same request again, and a second join with another key: one gift, one member.
        again = await http.post(url, json=body, headers=auth(ana))
        assert again.status_code == 200, again.text
        other_key = await http.post(
            url, json={"stream_id": stream, "idempotency_key": "j2"}, headers=auth(ana)
        )
        assert other_key.status_code == 200, other_key.text
        assert await _balance(http, ana) == 70
        # The entry gift is a gift to the creator: it counts for points.
        await _until_points(http, url, ana, gift_coins=30)


async def _until_points(http: httpx.AsyncClient, url: str, token: str, **wanted: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    got: dict[str, Any] = {}
    while loop.time() < deadline:
        got = (await http.get(f"{url}/me", headers=auth(token))).json()
        if all(got.get(k) == v for k, v in wanted.items()):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"points {got} never became {wanted}")


async def test_points_exact_for_a_random_sequence(server: ServerProcess) -> None:
    rng = random.Random(23)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        luna_id, luna = await person(http, "creator")
        await http.put("/v1/me/club", json={"name": "Exact"}, headers=auth(luna))
        stream = await go_live(http, luna, "counting")
        fans = [await person(http, "viewer") for _ in range(3)]
        for fan_id, _ in fans:
            await _coins(http, fan_id, 10_000)
        url = f"/v1/creators/{luna_id}/club/members"
        expected = {fan_id: 0 for fan_id, _ in fans}
        member = {fan_id: False for fan_id, _ in fans}
        prices = {"rose": 1, "finger_heart": 5, "perfume": 20, "doughnut": 30}
        for step in range(60):
            fan_id, token = rng.choice(fans)
            if rng.random() < 0.15:  # join (or leave) partway: only gifts while a member count
                if member[fan_id] and rng.random() < 0.3:
                    r = await http.delete(f"{url}/me", headers=auth(token))
                    assert r.status_code == 204
                    member[fan_id], expected[fan_id] = False, 0
                    continue
                r = await http.post(url, json={}, headers=auth(token))
                assert r.status_code in (200, 201), r.text
                member[fan_id] = True
                continue
            gift = rng.choice(list(prices))
            count = rng.randint(1, 4)
            r = await http.post(
                f"/v1/streams/{stream}/gifts",
                json={"gift_id": gift, "count": count, "idempotency_key": f"s{step}"},
                headers=auth(token),
            )
            assert r.status_code == 201, r.text
            if member[fan_id]:
                expected[fan_id] += prices[gift] * count
        for fan_id, token in fans:
            if member[fan_id]:
                # points = 10 per coin (no likes or watching here): the published table
                await _until_points(
                    http, url, token, gift_coins=expected[fan_id], points=10 * expected[fan_id]
                )
            else:
                problem(
                    await http.get(f"{url}/me", headers=auth(token)), 404, "club_member_not_found"
                )


async def test_members_only_chat(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        luna_id, luna = await person(http, "creator")
        _, ana = await person(http, "viewer")
        _, bo = await person(http, "viewer")
        await http.put("/v1/me/club", json={"name": "Inner Circle"}, headers=auth(luna))
        stream = await go_live(http, luna, "members only")
        r = await http.post(f"/v1/creators/{luna_id}/club/members", json={}, headers=auth(ana))
        assert r.status_code == 201, r.text

        # Only the creator switches their chat mode; bad modes and levels are typed refusals.
        problem(
            await http.put("/v1/me/club/chat", json={"mode": "members"}, headers=auth(ana)),
            403,
            "not_a_creator",
        )
        problem(
            await http.put("/v1/me/club/chat", json={"mode": "friends"}, headers=auth(luna)),
            422,
            "invalid_request",
        )
        problem(
            await http.put(
                "/v1/me/club/chat",
                json={"mode": "members_level", "min_level": 999},
                headers=auth(luna),
            ),
            422,
            "invalid_club_level",
        )
        r = await http.put("/v1/me/club/chat", json={"mode": "members"}, headers=auth(luna))
        assert r.status_code == 200, r.text
        assert r.json()["chat_mode"] == "members"

        url = server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
        async with (
            websockets.connect(await as_user(http, url, ana)) as ws_ana,
            websockets.connect(await as_user(http, url, bo)) as ws_bo,
            websockets.connect(await as_user(http, url, luna)) as ws_luna,
        ):
            member, outsider, host = Client(ws_ana), Client(ws_bo), Client(ws_luna)
            for c in (member, outsider, host):
                await c.recv()
            refused = await _chat(outsider)
            assert refused["error"]["code"] == "members_only_chat", refused
            assert "Inner Circle" in refused["error"]["detail"]
            assert "result" in await _chat(member)
            assert "result" in await _chat(host)  # the creator always chats in their room
            await outsider.until(lambda e: e["type"] == "chat" and e.get("club") is not None)
            line = next(e for e in outsider.events("chat") if e.get("club"))
            assert line["club"] == {"name": "Inner Circle", "level": 1}

            # At level 2 and above, a level-1 member is refused too; everyone again: all chat.
            r = await http.put(
                "/v1/me/club/chat",
                json={"mode": "members_level", "min_level": 2},
                headers=auth(luna),
            )
            assert r.status_code == 200, r.text
            assert (await _chat(member))["error"]["code"] == "members_only_chat"
            r = await http.put("/v1/me/club/chat", json={"mode": "everyone"}, headers=auth(luna))
            assert r.status_code == 200, r.text
            assert "result" in await _chat(outsider)


async def test_subscribers_only_chat_needs_no_club(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        luna_id, luna = await person(http, "creator")
        sub_id, sub = await person(http, "viewer")
        _, bo = await person(http, "viewer")
        assert (await http.get(f"/v1/creators/{luna_id}/chat-mode")).json() == {
            "creator_id": luna_id,
            "mode": "everyone",
            "min_level": 1,
        }
        # No club: the club modes are refused with their code, on both routes; nothing changes.
        for mode in ("members", "members_level"):
            problem(
                await http.put("/v1/me/chat-mode", json={"mode": mode}, headers=auth(luna)),
                409,
                "chat_mode_needs_club",
            )
        problem(
            await http.put("/v1/me/club/chat", json={"mode": "subscribers"}, headers=auth(luna)),
            404,
            "club_not_found",
        )
        problem(
            await http.put("/v1/me/chat-mode", json={"mode": "subscribers"}, headers=auth(bo)),
            403,
            "not_a_creator",
        )
        problem(
            await http.put("/v1/me/chat-mode", json={"mode": "subscribers"}), 401, "unauthorized"
        )
        r = await http.put("/v1/me/chat-mode", json={"mode": "subscribers"}, headers=auth(luna))
        assert r.status_code == 200, r.text
        assert r.json() == {"creator_id": luna_id, "mode": "subscribers", "min_level": 1}
        assert (await http.get(f"/v1/creators/{luna_id}/chat-mode")).json()["mode"] == "subscribers"
        problem(await http.get(f"/v1/creators/{luna_id}/club"), 404, "club_not_found")

        r = await http.put(
            "/v1/me/subscription-price", json={"price_coins": 100}, headers=auth(luna)
        )
        assert r.status_code == 200, r.text
        await _coins(http, sub_id, 100)
        r = await http.post(f"/v1/creators/{luna_id}/subscription", headers=auth(sub))
        assert r.status_code == 201, r.text
        stream = await go_live(http, luna, "subscribers only")
        url = server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
        async with (
            websockets.connect(await as_user(http, url, sub)) as ws_sub,
            websockets.connect(await as_user(http, url, bo)) as ws_bo,
            websockets.connect(await as_user(http, url, luna)) as ws_luna,
        ):
            subscriber, outsider, host = Client(ws_sub), Client(ws_bo), Client(ws_luna)
            for c in (subscriber, outsider, host):
                await c.recv()
            refused = await _chat(outsider)
            assert refused["error"]["code"] == "subscribers_only_chat", refused
            assert "result" in await _chat(subscriber)
            assert "result" in await _chat(host)

            # Naming a club keeps the subscribers-only chat; back to everyone, all chat.
            r = await http.put("/v1/me/club", json={"name": "Later Club"}, headers=auth(luna))
            assert r.status_code == 201, r.text
            assert r.json()["chat_mode"] == "subscribers"
            assert (await _chat(outsider))["error"]["code"] == "subscribers_only_chat"
            r = await http.put("/v1/me/chat-mode", json={"mode": "everyone"}, headers=auth(luna))
            assert r.status_code == 200, r.text
            assert "result" in await _chat(outsider)


async def test_changes_are_limited(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        luna_id, luna = await person(http, "creator")
        await http.put("/v1/me/club", json={"name": "Busy"}, headers=auth(luna))
        _, ana = await person(http, "viewer")
        codes = []
        for _ in range(40):
            r = await http.post(f"/v1/creators/{luna_id}/club/members", json={}, headers=auth(ana))
            codes.append(r.status_code)
        assert 429 in codes, codes
        limited = await http.delete(f"/v1/creators/{luna_id}/club/members/me", headers=auth(ana))
        problem(limited, 429, "rate_limited")


async def test_cookie_changes_need_the_csrf_header(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        luna_id, luna = await person(http, "creator")
        handle = (await http.get("/v1/me", headers=auth(luna))).json()["handle"]
        r = await http.post("/v1/auth/login", json={"login": handle, "password": "pw-pw-pw-pw"})
        assert r.status_code == 200, r.text
        # What a browser sends back: the session and CSRF cookies (a page of this site reads
        # the CSRF one and copies it into a header; another site's form cannot).
        cookie = {"Cookie": "; ".join(f"{k}={v}" for k, v in r.cookies.items())}
        http.cookies.clear()
        for headers in (cookie, cookie | {"X-CSRF-Token": "guess"}):
            problem(
                await http.put("/v1/me/club", json={"name": "Forged"}, headers=headers),
                403,
                "csrf_failed",
            )
            problem(
                await http.put("/v1/me/club/chat", json={"mode": "members"}, headers=headers),
                403,
                "csrf_failed",
            )
            problem(
                await http.put("/v1/me/chat-mode", json={"mode": "subscribers"}, headers=headers),
                403,
                "csrf_failed",
            )
        problem(await http.get(f"/v1/creators/{luna_id}/club"), 404, "club_not_found")
        assert (await http.get(f"/v1/creators/{luna_id}/chat-mode")).json()["mode"] == "everyone"
        token = r.cookies["gw_csrf"]
        made = await http.put(
            "/v1/me/club", json={"name": "Real"}, headers=cookie | {"X-CSRF-Token": token}
        )
        assert made.status_code == 201, made.text


async def test_the_studio_club_page_is_for_its_creator(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        anonymous = await http.get("/studio/club")
        assert anonymous.status_code in (302, 303), anonymous.text
        assert anonymous.headers["location"].startswith("/login")
        for role, status in (("viewer", 403), ("creator", 200)):
            _, token = await person(http, role)
            handle = (await http.get("/v1/me", headers=auth(token))).json()["handle"]
            r = await http.post("/v1/auth/login", json={"login": handle, "password": "pw-pw-pw-pw"})
            assert r.status_code == 200, r.text
            cookie = {"Cookie": "; ".join(f"{k}={v}" for k, v in r.cookies.items())}
            http.cookies.clear()
            for lang in ("en", "es", "ar"):
                page = await http.get(f"/studio/club?lang={lang}", headers=cookie)
                assert page.status_code == status, page.text
                assert f'lang="{lang}"' in page.text
                if status == 200:
                    assert ('dir="rtl"' in page.text) == (lang == "ar")
                    assert 'id="club-name"' in page.text
                    assert "<script>" not in page.text  # strict CSP: no inline scripts

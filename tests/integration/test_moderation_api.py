"""Moderation beyond one room, against a real `giftwave serve` on SQLite AND PostgreSQL (one
server per backend for the module): who may appoint moderators, ban and read reports, and
what everyone else gets (typed problems, no partial write); a banned viewer's chat, likes and
gifts are refused on the socket and over HTTP; reports keep the line as shown, once per person,
limited per user; a moderator of one creator is nobody in another's room.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from liveclient import Client, as_user, go_live, person
from serverproc import ADMIN_TOKEN, ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl
from giftwave.live.moderation import MAX_MODERATORS

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
_keys = itertools.count(1)


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("moderation")) as proc:
        yield proc


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    assert r.json()["code"] == code, r.text


async def _handle(http: httpx.AsyncClient, token: str) -> str:
    return str((await http.get("/v1/me", headers=auth(token))).json()["handle"])


async def _chat(client: Client, text: str) -> dict[str, Any]:
    return await client.command(id=f"c{next(_keys)}", cmd="chat", text=text)


async def test_who_may_appoint_ban_and_read(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        _, luna = await person(http, "creator")
        luna_id = int((await http.get("/v1/me", headers=auth(luna))).json()["id"])
        _, max_ = await person(http, "creator")
        max_id = int((await http.get("/v1/me", headers=auth(max_))).json()["id"])
        mod_id, mod = await person(http, "viewer")
        troll_id, _ = await person(http, "viewer")
        other_mod_id, other_mod = await person(http, "viewer")

        # The creator appoints by handle; again is 200 and changes nothing.
        r = await http.post(
            "/v1/me/moderators", json={"handle": await _handle(http, mod)}, headers=auth(luna)
        )
        assert r.status_code == 201, r.text
        assert r.json()["user_id"] == mod_id
        again = await http.post("/v1/me/moderators", json={"user_id": mod_id}, headers=auth(luna))
        assert again.status_code == 200, again.text
        r = await http.post("/v1/me/moderators", json={"user_id": other_mod_id}, headers=auth(luna))
        assert r.status_code == 201, r.text
        listed = (await http.get("/v1/me/moderators", headers=auth(luna))).json()
        assert [m["user_id"] for m in listed["moderators"]] == [mod_id, other_mod_id]
        assert listed["max_moderators"] == MAX_MODERATORS

        # Nobody else appoints, and bad bodies are typed refusals.
        problem(
            await http.post("/v1/me/moderators", json={"user_id": troll_id}, headers=auth(mod)),
            403,
            "not_a_creator",
        )
        problem(
            await http.post("/v1/me/moderators", json={"user_id": luna_id}, headers=auth(luna)),
            422,
            "cannot_moderate_self",
        )
        problem(
            await http.post("/v1/me/moderators", json={"user_id": 2**62}, headers=auth(luna)),
            404,
            "user_not_found",
        )
        problem(
            await http.post(
                "/v1/me/moderators", json={"handle": "nobody_here"}, headers=auth(luna)
            ),
            404,
            "user_not_found",
        )
        for body in ({}, {"user_id": mod_id, "handle": "x"}, {"user_id": "1; drop"}, [1]):
            problem(
                await http.post("/v1/me/moderators", json=body, headers=auth(luna)),
                422,
                "invalid_request",
            )
        problem(await http.post("/v1/me/moderators", json={"user_id": mod_id}), 401, "unauthorized")

        # A moderator bans a viewer from the creator's rooms; the creator cannot be banned,
        # a moderator cannot ban another moderator, and a moderator of luna is nobody for max.
        r = await http.post(
            f"/v1/creators/{luna_id}/bans",
            json={"user_id": troll_id, "reason": "spam links"},
            headers=auth(mod),
        )
        assert r.status_code == 201, r.text
        assert r.json()["banned_by"] == mod_id
        assert r.json()["reason"] == "spam links"
        again = await http.post(
            f"/v1/creators/{luna_id}/bans", json={"user_id": troll_id}, headers=auth(mod)
        )
        assert again.status_code == 200
        assert again.json()["reason"] == "spam links"
        problem(
            await http.post(
                f"/v1/creators/{luna_id}/bans", json={"user_id": luna_id}, headers=auth(mod)
            ),
            422,
            "cannot_ban_creator",
        )
        problem(
            await http.post(
                f"/v1/creators/{luna_id}/bans", json={"user_id": other_mod_id}, headers=auth(mod)
            ),
            403,
            "cannot_ban_moderator",
        )
        problem(
            await http.post(
                f"/v1/creators/{max_id}/bans", json={"user_id": troll_id}, headers=auth(mod)
            ),
            403,
            "not_moderator",
        )
        problem(
            await http.get(f"/v1/creators/{max_id}/bans", headers=auth(mod)), 403, "not_moderator"
        )
        problem(
            await http.get(f"/v1/creators/{luna_id}/reports", headers=auth(max_)),
            403,
            "not_moderator",
        )
        problem(await http.get("/v1/admin/reports", headers=auth(luna)), 403, "admin_required")
        # Bad ids and sizes.
        for path in ("/v1/creators/0/bans", f"/v1/creators/{2**63}/bans", "/v1/creators/x/bans"):
            problem(await http.get(path, headers=auth(luna)), 422, "invalid_request")
        problem(
            await http.post(
                f"/v1/creators/{luna_id}/bans",
                json={"user_id": troll_id, "reason": "x" * 201},
                headers=auth(luna),
            ),
            422,
            "invalid_request",
        )
        problem(
            await http.post(
                f"/v1/creators/{luna_id}/bans",
                json={"user_id": mod_id, "reason": "bad\u0000reason"},
                headers=auth(luna),
            ),
            422,
            "invalid_reason",
        )
        bans = (await http.get(f"/v1/creators/{luna_id}/bans", headers=auth(luna))).json()["bans"]
        assert [b["user_id"] for b in bans] == [troll_id]  # the refusals wrote nothing

        # The creator bans a moderator: they stop being one.
        r = await http.post(
            f"/v1/creators/{luna_id}/bans", json={"user_id": other_mod_id}, headers=auth(luna)
        )
        assert r.status_code == 201, r.text
        listed = (await http.get("/v1/me/moderators", headers=auth(luna))).json()
        assert [m["user_id"] for m in listed["moderators"]] == [mod_id]
        problem(
            await http.get(f"/v1/creators/{luna_id}/bans", headers=auth(other_mod)),
            403,
            "not_moderator",
        )
        # Dismissed: no more powers, at once.
        assert (
            await http.delete(f"/v1/me/moderators/{mod_id}", headers=auth(luna))
        ).status_code == 204
        problem(
            await http.get(f"/v1/creators/{luna_id}/bans", headers=auth(mod)), 403, "not_moderator"
        )
        assert (
            await http.delete(f"/v1/creators/{luna_id}/bans/{other_mod_id}", headers=auth(luna))
        ).status_code == 204


async def test_a_banned_viewer_cannot_chat_like_or_gift_and_reports_work(
    server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        creator_id, creator = await person(http, "creator")
        _, other_creator = await person(http, "creator")
        troll_id, troll = await person(http, "viewer")
        fan_id, fan = await person(http, "viewer")
        r = await http.post(
            f"/v1/admin/users/{troll_id}/coins",
            json={"coins": 1000, "idempotency_key": f"mod-{troll_id}"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        stream = await go_live(http, creator, "moderated")
        other_stream = await go_live(http, other_creator, "elsewhere")
        url = server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
        async with (
            websockets.connect(await as_user(http, url, troll)) as troll_ws,
            websockets.connect(await as_user(http, url, fan)) as fan_ws,
        ):
            bad, good = Client(troll_ws), Client(fan_ws)
            await bad.recv()
            await good.recv()
            said = await _chat(bad, "buy my crypto at scam.example")
            message_id = said["result"]["message_id"]
            await good.until(lambda e: e["type"] == "chat" and e["message_id"] == message_id)

            # A viewer reports the line: kept as shown, once per person, limited per user.
            r = await http.post(
                f"/v1/streams/{stream}/reports",
                json={"message_id": message_id, "reason": "spam"},
                headers=auth(fan),
            )
            assert r.status_code == 201, r.text
            assert r.json()["text"] == "buy my crypto at scam.example"
            assert r.json()["user_id"] == troll_id
            assert r.json()["reporter_id"] == fan_id
            again = await http.post(
                f"/v1/streams/{stream}/reports",
                json={"message_id": message_id, "reason": "hate"},
                headers=auth(fan),
            )
            assert again.status_code == 200
            assert again.json()["id"] == r.json()["id"]
            problem(
                await http.post(
                    f"/v1/streams/{stream}/reports",
                    json={"message_id": message_id, "reason": "spam"},
                    headers=auth(troll),
                ),
                422,
                "cannot_report_self",
            )
            for body in (
                {"message_id": message_id, "reason": "boring"},
                {"message_id": "../" + message_id, "reason": "spam"},
                {"message_id": "a" * 33, "reason": "spam"},
                {"message_id": message_id},
            ):
                problem(
                    await http.post(f"/v1/streams/{stream}/reports", json=body, headers=auth(fan)),
                    422,
                    "invalid_request",
                )
            problem(
                await http.post(
                    f"/v1/streams/{stream}/reports",
                    json={"message_id": "0" * 16, "reason": "spam"},
                    headers=auth(fan),
                ),
                404,
                "message_not_found",
            )
            problem(
                await http.post(
                    "/v1/streams/nosuchstream/reports",
                    json={"message_id": message_id, "reason": "spam"},
                    headers=auth(fan),
                ),
                404,
                "stream_not_found",
            )
            problem(
                await http.post(
                    f"/v1/streams/{stream}/reports",
                    json={"message_id": message_id, "reason": "spam"},
                ),
                401,
                "unauthorized",
            )
            # Reporting spam: past the allowance, 429 with Retry-After, and nothing written.
            spam_id, spammer = await person(http, "viewer")
            codes = []
            for _ in range(14):
                r = await http.post(
                    f"/v1/streams/{stream}/reports",
                    json={"message_id": "f" * 16, "reason": "spam"},
                    headers=auth(spammer),
                )
                codes.append(r.json()["code"])
                if r.status_code == 429:
                    assert int(r.headers["retry-after"]) >= 1
            assert codes.count("rate_limited") >= 4
            assert "message_not_found" in codes
            listed = (
                await http.get(f"/v1/creators/{creator_id}/reports", headers=auth(creator))
            ).json()["reports"]
            assert [(x["message_id"], x["reporter_id"]) for x in listed] == [(message_id, fan_id)]
            everything = (await http.get("/v1/admin/reports", headers=ADMIN)).json()["reports"]
            assert message_id in {x["message_id"] for x in everything}
            assert spam_id not in {x["reporter_id"] for x in everything}

            # Banned: chat, likes and gifts refused with a typed error, on the socket and
            # over HTTP; the coins stay; another creator's room is not affected.
            r = await http.post(
                f"/v1/creators/{creator_id}/bans", json={"user_id": troll_id}, headers=auth(creator)
            )
            assert r.status_code == 201, r.text
            assert (await _chat(bad, "let me back"))["error"]["code"] == "banned"
            liked = await bad.command(id="l1", cmd="like", count=1)
            assert liked["error"]["code"] == "banned"
            gift = await bad.command(
                id="g1", cmd="send_gift", gift_id="rose", count=1, idempotency_key="ban-g1"
            )
            assert gift["error"]["code"] == "banned"
            problem(
                await http.post(
                    f"/v1/streams/{stream}/gifts",
                    json={"gift_id": "rose", "count": 1, "idempotency_key": "ban-g2"},
                    headers=auth(troll),
                ),
                403,
                "banned",
            )
            wallet = (await http.get("/v1/me/wallet", headers=auth(troll))).json()
            assert wallet["coins"] == 1000
            r = await http.post(
                f"/v1/streams/{other_stream}/gifts",
                json={"gift_id": "rose", "count": 1, "idempotency_key": "ban-g3"},
                headers=auth(troll),
            )
            assert r.status_code == 201, r.text
            assert "result" in await _chat(good, "still here")

            # Unbanned: at once.
            r = await http.delete(
                f"/v1/creators/{creator_id}/bans/{troll_id}", headers=auth(creator)
            )
            assert r.status_code == 204
            assert "result" in await _chat(bad, "sorry")
            r = await http.post(
                f"/v1/streams/{stream}/gifts",
                json={"gift_id": "rose", "count": 1, "idempotency_key": "ban-g4"},
                headers=auth(troll),
            )
            assert r.status_code == 201, r.text


async def test_an_appointed_moderator_deletes_and_mutes_on_the_socket(
    server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        _, creator = await person(http, "creator")
        _, elsewhere = await person(http, "creator")
        mod_id, mod = await person(http, "viewer")
        talker_id, talker = await person(http, "viewer")
        stream = await go_live(http, creator, "team")
        await go_live(http, elsewhere, "not theirs")
        url = server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
        async with (
            websockets.connect(await as_user(http, url, mod)) as mod_ws,
            websockets.connect(await as_user(http, url, talker)) as talker_ws,
        ):
            moderator, speaker = Client(mod_ws), Client(talker_ws)
            await moderator.recv()
            await speaker.recv()
            said = await _chat(speaker, "first!")
            message_id = said["result"]["message_id"]
            refused = await moderator.command(id=1, cmd="delete_message", message_id=message_id)
            assert refused["error"]["code"] == "not_moderator"  # not appointed yet
            r = await http.post(
                "/v1/me/moderators", json={"user_id": mod_id}, headers=auth(elsewhere)
            )
            assert r.status_code == 201  # a moderator of another creator: still nobody here
            refused = await moderator.command(id=2, cmd="delete_message", message_id=message_id)
            assert refused["error"]["code"] == "not_moderator"
            r = await http.post(
                "/v1/me/moderators", json={"user_id": mod_id}, headers=auth(creator)
            )
            assert r.status_code == 201
            deleted = await moderator.command(id=3, cmd="delete_message", message_id=message_id)
            assert deleted["result"] == {"deleted": message_id}
            muted = await moderator.command(id=4, cmd="mute", user_id=talker_id, minutes=5)
            assert muted["result"]["muted"] == talker_id
            await speaker.until(lambda e: e["type"] == "muted")
            assert (await _chat(speaker, "hello?"))["error"]["code"] == "muted"

"""Paid highlighted messages against real `giftwave serve` processes: a gift with a message is
one request (both or neither), pinned by its tier in every viewer's frames and in a late
joiner's snapshot, gone at its time, kept by a restarted node (seeded from the database), hidden
by the creator on every node (the gift stands), and refused with a stable code, nothing
charged, for bad text, a gift below the first tier, a muted sender, or the key reused with
another text. On SQLite and PostgreSQL; two nodes share PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from liveclient import Client, as_user, go_live, person
from redisproc import PrivateRedis
from serverproc import ADMIN_TOKEN, ServerGroup, giftwave_env, migrate

from giftwave.db.urls import DatabaseUrl

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# hand_hearts costs 100 coins: tier 1 pins for 1 s (to watch it go), 2 for ten minutes.
TIERS = [
    {"min_coins": 100, "pinned_s": 1, "colour": "blue"},
    {"min_coins": 500, "pinned_s": 600, "colour": "teal"},
]
_ids = itertools.count(1)


def _env(db_url: DatabaseUrl) -> dict[str, str]:
    env = giftwave_env(db_url)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        GIFTWAVE_PAID_MESSAGE_TIERS=orjson.dumps(TIERS).decode(),
    )
    return env


async def _balance(http: httpx.AsyncClient, token: str) -> int:
    r = await http.get("/v1/me/wallet", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return int(r.json()["coins"])


async def _snapshot(url: str) -> dict[str, Any]:
    async with websockets.connect(url) as ws:
        frame = orjson.loads(await ws.recv())
    [snapshot] = frame["events"]
    assert snapshot["type"] == "snapshot"
    return dict(snapshot)


def _pinned(snapshot: dict[str, Any]) -> list[str]:
    return [m["text"] for m in snapshot.get("paid_messages", [])]


@pytest.mark.parametrize("bare_db_url", ["sqlite", "postgresql"], indirect=True)
async def test_pinned_shown_expired_refused_and_kept_across_a_restart(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    env = _env(bare_db_url)
    migrate(env)
    with ServerGroup(tmp_path, env) as servers:
        [server] = servers.start("a")
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            r = await http.get("/v1/paid-messages/tiers")
            assert r.status_code == 200
            assert r.json()["tiers"][1] == {
                "tier": 2,
                "min_coins": 500,
                "pinned_s": 600,
                "colour": "teal",
            }
            viewer_id, viewer = await person(http, "viewer")
            creator_id, creator = await person(http, "creator")
            r = await http.post(
                f"/v1/admin/users/{viewer_id}/coins",
                json={"coins": 10_000, "idempotency_key": "pm"},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
            stream = await go_live(http, creator, "paid")
            url = server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
            auth = {"Authorization": f"Bearer {viewer}"}

            async def gift(key: str, gift_id: str, count: int, message: Any) -> httpx.Response:
                body = {"gift_id": gift_id, "count": count, "idempotency_key": key}
                return await http.post(
                    f"/v1/streams/{stream}/gifts", json={**body, "message": message}, headers=auth
                )

            async with websockets.connect(url) as watching:
                watcher = Client(watching)
                await watcher.recv()
                # Refused, nothing charged: bad text, or a gift below the first tier.
                for key, gift_id, message, status, code in [
                    ("b1", "hand_hearts", "", 422, "invalid_message"),
                    ("b2", "hand_hearts", "x" * 201, 422, "invalid_message"),
                    ("b3", "hand_hearts", "ding\x07", 422, "invalid_message"),
                    ("b4", "hand_hearts", 42, 422, "invalid_request"),
                    ("b5", "rose", "hi", 409, "paid_message_below_tier"),
                ]:
                    r = await gift(key, gift_id, 1, message)
                    assert r.status_code == status, r.text
                    assert r.json()["code"] == code, r.text
                    assert r.headers["content-type"] == "application/problem+json"
                assert await _balance(http, viewer) == 10_000

                r = await gift("t2", "hand_hearts", 5, "  go ana!  ")
                assert r.status_code == 201, r.text
                send_id = r.json()["send_id"]
                await watcher.until(lambda e: e["type"] == "paid_message")
                [shown] = watcher.events("paid_message")
                assert (shown["text"], shown["tier"], shown["colour"]) == ("go ana!", 2, "teal")
                assert (shown["send_id"], shown["coins"]) == (send_id, 500)
                # The retry answers the first receipt and pins nothing twice; another text
                # with the same key is a conflict.
                again = await gift("t2", "hand_hearts", 5, "go ana!")
                assert again.status_code == 201, again.text
                assert again.json()["send_id"] == send_id
                other = await gift("t2", "hand_hearts", 5, "another text")
                assert other.status_code == 409
                assert other.json()["code"] == "idempotency_key_reused"
                assert await _balance(http, viewer) == 9_500

                # Chat's rate (3 at once, then 1 a second) counts paid messages too.
                r = await gift("t1", "hand_hearts", 1, "short one")
                assert r.status_code == 429, r.text
                assert r.json()["code"] == "rate_limited"
                assert await _balance(http, viewer) == 9_500
                await asyncio.sleep(1.1)
                r = await gift("t1", "hand_hearts", 1, "short one")
                assert r.status_code == 201, r.text
                assert _pinned(await _snapshot(url)) == ["go ana!", "short one"]
                # A plain gift carries no message.
                r = await gift("p1", "rose", 1, None)
                assert r.status_code == 201, r.text
            await asyncio.sleep(1.3)  # tier 1 pins for 1 s
            assert _pinned(await _snapshot(url)) == ["go ana!"]
        server.stop()
        server.start()  # a rebuilt room: pinned from the database
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            url = server.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
            assert _pinned(await _snapshot(url)) == ["go ana!"]
            # Muted in the room: the message, and so its gift, is refused.
            async with (
                websockets.connect(await as_user(http, url, creator)) as creator_ws,
                websockets.connect(await as_user(http, url, viewer)) as viewer_ws,
            ):
                mod, fan = Client(creator_ws), Client(viewer_ws)
                await mod.recv()
                await fan.recv()
                muted = await mod.command(id=next(_ids), cmd="mute", user_id=viewer_id, minutes=5)
                assert "result" in muted, muted
                await fan.until(lambda e: e["type"] == "muted")
                refused = await fan.command(
                    id=next(_ids),
                    cmd="send_gift",
                    gift_id="hand_hearts",
                    idempotency_key="m1",
                    message="let me talk",
                )
                assert refused["error"]["code"] == "muted", refused
                not_text = await fan.command(
                    id=next(_ids),
                    cmd="send_gift",
                    gift_id="hand_hearts",
                    idempotency_key="m2",
                    message=42,
                )
                assert not_text["error"]["code"] == "invalid_message", not_text
            # Banned from the creator's rooms: refused as any gift of theirs, nothing charged.
            r = await http.post(
                f"/v1/creators/{creator_id}/bans",
                json={"user_id": viewer_id},
                headers={"Authorization": f"Bearer {creator}"},
            )
            assert r.status_code == 201, r.text
            r = await http.post(
                f"/v1/streams/{stream}/gifts",
                json={"gift_id": "hand_hearts", "idempotency_key": "x1", "message": "banned?"},
                headers={"Authorization": f"Bearer {viewer}"},
            )
            assert (r.status_code, r.json()["code"]) == (403, "banned"), r.text
            assert await _balance(http, viewer) == 10_000 - 500 - 100 - 1


@pytest.mark.parametrize("bare_db_url", ["postgresql"], indirect=True)
async def test_hidden_by_the_creator_on_every_node_and_the_gift_stands(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with PrivateRedis(tmp_path) as redis:
        env = _env(bare_db_url)
        env.update(GIFTWAVE_BROKER_URL=redis.url)
        migrate(env)
        with ServerGroup(tmp_path, env) as servers:
            a, b = servers.start("a", "b")
            async with (
                httpx.AsyncClient(base_url=a.base_url, timeout=30) as on_a,
                httpx.AsyncClient(base_url=b.base_url, timeout=30) as on_b,
            ):
                viewer_id, viewer = await person(on_a, "viewer")
                _, creator = await person(on_a, "creator")
                _, stranger = await person(on_a, "viewer")
                r = await on_a.post(
                    f"/v1/admin/users/{viewer_id}/coins",
                    json={"coins": 1_000, "idempotency_key": "pm"},
                    headers=ADMIN,
                )
                assert r.status_code == 200, r.text
                stream = await go_live(on_a, creator, "two nodes")
                path = f"/v1/streams/{stream}/ws"
                url_a = a.base_url.replace("http://", "ws://") + path
                url_b = b.base_url.replace("http://", "ws://") + path
                async with (
                    websockets.connect(url_a) as on_a_ws,
                    websockets.connect(await as_user(on_b, url_b, creator)) as creator_ws,
                ):
                    watcher, mod = Client(on_a_ws), Client(creator_ws)
                    await watcher.recv()
                    await mod.recv()
                    r = await on_b.post(
                        f"/v1/streams/{stream}/gifts",
                        json={
                            "gift_id": "hand_hearts",
                            "count": 5,
                            "idempotency_key": "h1",
                            "message": "pin me",
                        },
                        headers={"Authorization": f"Bearer {viewer}"},
                    )
                    assert r.status_code == 201, r.text
                    send_id = r.json()["send_id"]
                    await watcher.until(lambda e: e["type"] == "paid_message")
                    hide = f"/v1/streams/{stream}/paid-messages/{send_id}/hide"
                    # Not theirs to hide (403), nothing by that id (404), no login (401).
                    r = await on_a.post(hide, headers={"Authorization": f"Bearer {stranger}"})
                    assert (r.status_code, r.json()["code"]) == (403, "not_moderator")
                    r = await on_a.post(
                        f"/v1/streams/{stream}/paid-messages/gift:1:nope/hide",
                        headers={"Authorization": f"Bearer {creator}"},
                    )
                    assert (r.status_code, r.json()["code"]) == (404, "paid_message_not_found")
                    r = await on_a.post(
                        f"/v1/streams/{stream}/paid-messages/{'x' * 101}/hide",
                        headers={"Authorization": f"Bearer {creator}"},
                    )
                    assert r.status_code == 422
                    assert (await on_a.post(hide)).status_code == 401
                    # The creator hides it through node B's socket; node A's viewers see it go.
                    hidden = await mod.command(
                        id=next(_ids), cmd="hide_paid_message", send_id=send_id
                    )
                    assert hidden["result"] == {"hidden": send_id}, hidden
                    await watcher.until(lambda e: e["type"] == "paid_message_hidden")
                    assert watcher.events("paid_message_hidden") == [
                        {"type": "paid_message_hidden", "send_id": send_id}
                    ]
                    assert _pinned(await _snapshot(url_a)) == []
                    assert _pinned(await _snapshot(url_b)) == []
                    # Hiding again answers the same; the gift stands: no refund.
                    r = await on_a.post(hide, headers={"Authorization": f"Bearer {creator}"})
                    assert r.status_code == 200, r.text
                    assert await _balance(on_a, viewer) == 500

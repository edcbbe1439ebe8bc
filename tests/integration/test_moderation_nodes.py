"""A ban is honoured on every node at once: two `giftwave serve` processes sharing PostgreSQL
and a private Redis. A viewer chats on node B (B now holds "not banned" for them, for up to
half a minute); the creator bans them through node A; B refuses their next line and gift at
once, because A's notice dropped B's answer, not because it expired. Unbanned through A, B
lets them chat again at once."""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import pytest
import websockets
from liveclient import Client, as_user, go_live, person, until_chat
from redisproc import two_nodes
from serverproc import ADMIN_TOKEN

from giftwave.db.urls import DatabaseUrl
from giftwave.live.ban_gate import TTL_S

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
AT_ONCE_S = 2.0  # the notice's trip through Redis: well under the cached answer's TTL_S
_ids = itertools.count(1)
assert AT_ONCE_S * 10 < TTL_S


@pytest.mark.parametrize("bare_db_url", ["postgresql"], indirect=True)
async def test_a_ban_on_node_a_refuses_chat_on_node_b_at_once(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with two_nodes(bare_db_url, tmp_path) as (a, b):
        async with (
            httpx.AsyncClient(base_url=a.base_url, timeout=30) as on_a,
            httpx.AsyncClient(base_url=b.base_url, timeout=30) as on_b,
        ):
            creator_id, creator = await person(on_a, "creator")
            troll_id, troll = await person(on_a, "viewer")
            r = await on_a.post(
                f"/v1/admin/users/{troll_id}/coins",
                json={"coins": 100, "idempotency_key": "nodes"},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
            stream = await go_live(on_a, creator, "two nodes")
            creator_auth = {"Authorization": f"Bearer {creator}"}
            url = b.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
            async with websockets.connect(await as_user(on_b, url, troll)) as ws:
                viewer = Client(ws)
                await viewer.recv()
                # Node B answers "not banned", and keeps that answer.
                assert await until_chat(viewer, "sent", AT_ONCE_S) < 0.5
                gift = await on_b.post(
                    f"/v1/streams/{stream}/gifts",
                    json={"gift_id": "rose", "count": 1, "idempotency_key": "n1"},
                    headers={"Authorization": f"Bearer {troll}"},
                )
                assert gift.status_code == 201, gift.text

                r = await on_a.post(
                    f"/v1/creators/{creator_id}/bans",
                    json={"user_id": troll_id},
                    headers=creator_auth,
                )
                assert r.status_code == 201, r.text
                await until_chat(viewer, "banned", AT_ONCE_S)
                gift = await on_b.post(
                    f"/v1/streams/{stream}/gifts",
                    json={"gift_id": "rose", "count": 1, "idempotency_key": "n2"},
                    headers={"Authorization": f"Bearer {troll}"},
                )
                assert gift.status_code == 403, gift.text
                assert gift.json()["code"] == "banned"

                r = await on_a.delete(
                    f"/v1/creators/{creator_id}/bans/{troll_id}", headers=creator_auth
                )
                assert r.status_code == 204
                await until_chat(viewer, "sent", AT_ONCE_S)

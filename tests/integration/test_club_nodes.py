"""A fan club's chat mode and memberships count on every node at once: two `giftwave serve`
processes sharing PostgreSQL and a private Redis. A viewer chats on node B (B now holds "no
club rule, not a member" for up to half a minute); the creator switches chat to members only
through node A; B refuses the viewer's next line at once, because A's notice dropped B's
answer, not because it expired. The viewer joins through A: B lets them chat at once, with
their badge; they leave through A: B refuses again."""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import pytest
import websockets
from liveclient import Client, as_user, go_live, person, until_chat
from redisproc import two_nodes

from giftwave.db.urls import DatabaseUrl
from giftwave.social.club_gate import TTL_S

AT_ONCE_S = 2.0  # the notice's trip through Redis: well under the cached answer's TTL_S
_ids = itertools.count(1)
assert AT_ONCE_S * 10 < TTL_S


@pytest.mark.parametrize("bare_db_url", ["postgresql"], indirect=True)
async def test_chat_mode_and_membership_count_on_node_b_at_once(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with two_nodes(bare_db_url, tmp_path) as (a, b):
        async with (
            httpx.AsyncClient(base_url=a.base_url, timeout=30) as on_a,
            httpx.AsyncClient(base_url=b.base_url, timeout=30) as on_b,
        ):
            creator_id, creator = await person(on_a, "creator")
            _, fan = await person(on_a, "viewer")
            creator_auth = {"Authorization": f"Bearer {creator}"}
            fan_auth = {"Authorization": f"Bearer {fan}"}
            r = await on_a.put("/v1/me/club", json={"name": "Two Nodes"}, headers=creator_auth)
            assert r.status_code == 201, r.text
            stream = await go_live(on_a, creator, "two nodes")
            url = b.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
            async with websockets.connect(await as_user(on_b, url, fan)) as ws:
                viewer = Client(ws)
                await viewer.recv()
                await until_chat(viewer, "sent", AT_ONCE_S)  # node B keeps "everyone, not a member"

                r = await on_a.put(
                    "/v1/me/club/chat", json={"mode": "members"}, headers=creator_auth
                )
                assert r.status_code == 200, r.text
                await until_chat(viewer, "members_only_chat", AT_ONCE_S)

                members = f"/v1/creators/{creator_id}/club/members"
                r = await on_a.post(members, json={}, headers=fan_auth)
                assert r.status_code == 201, r.text
                await until_chat(viewer, "sent", AT_ONCE_S)
                await viewer.until(
                    lambda e: (
                        e["type"] == "chat" and e.get("club") == {"name": "Two Nodes", "level": 1}
                    )
                )

                r = await on_a.delete(f"{members}/me", headers=fan_auth)
                assert r.status_code == 204, r.text
                await until_chat(viewer, "members_only_chat", AT_ONCE_S)

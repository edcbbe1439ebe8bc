"""A spending reminder across nodes, on the viewer's own socket (docs/protocol.md, "For one
viewer alone"): two `giftwave serve` processes on one database and a private Redis, reminders
after one minute of gifting. The viewer gifts on node A; a third node's count of their gift
57 s before it arrives late (the same state code on the same Redis): 57 s, nothing yet; then
they gift on node B, 3.5 s after A's: B's socket hears the reminder, once, from the summed
gifting time (B alone had one gift). A
retry of B's gift on A answers the same receipt and says nothing again; neither does A's next
gift; another viewer in the room never hears it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from liveclient import Client, as_user, go_live, person
from redisproc import PrivateRedis
from serverproc import ADMIN_TOKEN, ServerGroup, giftwave_env, migrate

from giftwave.db.urls import DatabaseUrl
from giftwave.economy.spending_reminders import RedisReminderState

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EARLIER_US = 57_000_000  # the first gift, elsewhere, before A's; a minute is due 3 s after A's


async def _gift(client: Client, ack: int, key: str) -> dict[str, Any]:
    reply = await client.command(
        id=ack, cmd="send_gift", gift_id="rose", count=1, idempotency_key=key
    )
    assert "result" in reply, reply
    return dict(reply["result"])


async def _quiet(client: Client, wait_s: float = 0.5) -> None:
    """Read what else arrives for a moment (a personal event would come right after its ack)."""
    try:
        while True:
            await client.recv(wait_s)
    except TimeoutError:
        pass


@pytest.mark.parametrize("bare_db_url", ["sqlite", "postgresql"], indirect=True)
async def test_the_reminder_sums_both_nodes_and_is_said_once_to_the_viewer_alone(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with PrivateRedis(tmp_path) as redis:
        env = giftwave_env(bare_db_url)
        env.update(
            GIFTWAVE_PASSWORD_TIME_COST="1",
            GIFTWAVE_PASSWORD_MEMORY_KIB="8",
            GIFTWAVE_BROKER_URL=redis.url,
            GIFTWAVE_SPENDING_REMINDER_AFTER_MIN="1",
            GIFTWAVE_SPENDING_REMINDER_GAP_MIN="1",
        )
        migrate(env)
        with ServerGroup(tmp_path, env) as servers:
            a, b = servers.start("a", "b")
            async with (
                httpx.AsyncClient(base_url=a.base_url, timeout=30) as on_a,
                httpx.AsyncClient(base_url=b.base_url, timeout=30) as on_b,
            ):
                viewer_id, viewer = await person(on_a, "viewer")
                _, watcher = await person(on_a, "viewer")
                _, creator = await person(on_a, "creator")
                r = await on_a.post(
                    f"/v1/admin/users/{viewer_id}/coins",
                    json={"coins": 1_000, "idempotency_key": "reminders"},
                    headers=ADMIN,
                )
                assert r.status_code == 200, r.text
                stream = await go_live(on_a, creator, "reminders")

                def url(node: Any) -> str:
                    return node.base_url.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"

                async with (
                    websockets.connect(await as_user(on_a, url(a), viewer)) as ws_a,
                    websockets.connect(await as_user(on_b, url(b), viewer)) as ws_b,
                    websockets.connect(await as_user(on_b, url(b), watcher)) as ws_w,
                ):
                    mine_a, mine_b, theirs = Client(ws_a), Client(ws_b), Client(ws_w)
                    for client in (mine_a, mine_b, theirs):
                        await client.recv()  # the snapshot
                    answer = await _gift(mine_a, 1, "on-a-1")
                    answered = time.monotonic()
                    assert "reminder" not in answer  # one gift
                    elsewhere = RedisReminderState(redis.url)
                    try:
                        first_us = int(answer["created_at_us"]) - EARLIER_US
                        said, _ = await elsewhere.advance(viewer_id, first_us, 1, 1, 1)
                        assert said is None  # 57 s of gifting: not a minute yet
                    finally:
                        await elsewhere.close()
                    await asyncio.sleep(max(0.0, 3.5 - (time.monotonic() - answered)))

                    answer = await _gift(mine_b, 1, "on-b-1")
                    await _quiet(mine_b)
                    shown = {
                        "type": "spending_reminder",
                        "reason": "gifting_time",
                        "minutes": 1,
                        "month_coins": 0,
                        "average_month_coins": 0,
                    }
                    assert mine_b.personal == [shown]  # on B's socket, after the ack
                    assert answer["reminder"] == shown  # and in the answer, as before

                    # Its retry, on node A: the same receipt, no reminder again.
                    again = await _gift(mine_a, 2, "on-b-1")
                    assert again["send_id"] == answer["send_id"]
                    assert "reminder" not in again
                    more = await _gift(mine_a, 3, "on-a-2")  # once per streak, on any node
                    assert "reminder" not in more
                    await _quiet(mine_a)
                    await _quiet(theirs)
                    assert mine_a.personal == []
                    assert theirs.personal == []  # never broadcast to the room
                    assert not any(
                        e["type"] == "spending_reminder" for f in theirs.frames for e in f["events"]
                    )

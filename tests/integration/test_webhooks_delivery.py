"""Webhooks from real `giftwave serve` processes to a receiver on 127.0.0.1, on SQLite and
PostgreSQL: gifts arrive signed (checked with the code docs/webhooks.md gives receivers), a
failing receiver gets the same delivery again with growing gaps, a combo ends once with its
total, a goal is reached once; a kill -9 with deliveries pending loses none of them; two nodes
over Redis deliver each event once."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from serverproc import ADMIN_TOKEN, ServerGroup, giftwave_env, migrate
from webhook_receiver import Received, Receiver

from giftwave.db.urls import DatabaseUrl

ADMIN: Final = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HOOKS: Final = "/v1/creators/me/webhooks"
DOCS: Final = Path(__file__).parents[2] / "docs" / "webhooks.md"
_n = itertools.count(1)

Verify = Callable[[str, bytes, str], bool]


def documented_verify() -> Verify:
    """The receiver's verification code exactly as docs/webhooks.md shows it."""
    found = re.search(r"```python\n(.*?def verify\(.*?)```", DOCS.read_text(), re.DOTALL)
    assert found is not None, "docs/webhooks.md lost its verification example"
    namespace: dict[str, Any] = {}
    exec(compile(found.group(1), str(DOCS), "exec"), namespace)
    verify: Verify = namespace["verify"]
    return verify


def server_env(db: DatabaseUrl, **extra: str) -> dict[str, str]:
    env = giftwave_env(db)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        GIFTWAVE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true",  # the receiver is on 127.0.0.1
        **extra,
    )
    return env


class Scene:
    """A creator live, a viewer with coins, both over one HTTP client."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.creator: dict[str, str] = {}
        self.viewer: dict[str, str] = {}
        self.viewer_id = 0
        self.stream = ""

    async def _person(self, role: str) -> tuple[int, dict[str, str]]:
        n = next(_n)
        r = await self.http.post(
            "/v1/auth/register",
            json={
                "handle": f"{role[:4]}{n}x{os.getpid() % 1000}",
                "email": f"{role}{n}@hooks.test",
                "password": "pw-pw-pw-pw",
                "birth_date": "1990-01-01",
                "country": "US",
                "role": role,
            },
        )
        assert r.status_code == 201, r.text
        return int(r.json()["user"]["id"]), {"Authorization": f"Bearer {r.json()['token']}"}

    async def setup(self) -> Scene:
        self.viewer_id, self.viewer = await self._person("viewer")
        _, self.creator = await self._person("creator")
        r = await self.http.post(
            f"/v1/admin/users/{self.viewer_id}/coins",
            json={"coins": 100_000, "idempotency_key": "hooks"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        r = await self.http.post("/v1/streams", json={"title": "hooks"}, headers=self.creator)
        assert r.status_code == 201, r.text
        self.stream = r.json()["id"]
        return self

    async def hook(self, url: str, events: list[str]) -> dict[str, Any]:
        r = await self.http.post(HOOKS, json={"url": url, "events": events}, headers=self.creator)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def gift(self, gift_id: str, key: str, via: httpx.AsyncClient | None = None) -> None:
        r = await (via or self.http).post(
            f"/v1/streams/{self.stream}/gifts",
            json={"gift_id": gift_id, "idempotency_key": key},
            headers=self.viewer,
        )
        assert r.status_code == 201, r.text

    async def deliveries(self, hook_id: int) -> list[dict[str, Any]]:
        r = await self.http.get(
            f"{HOOKS}/{hook_id}/deliveries", params={"limit": 100}, headers=self.creator
        )
        assert r.status_code == 200, r.text
        return list(r.json()["deliveries"])

    def send_id(self, key: str) -> str:
        return f"gift:{self.viewer_id}:{key}"


def by_type(got: list[Received], kind: str) -> list[dict[str, Any]]:
    return [r.event for r in got if r.event["type"] == kind and r.status == 200]


def delivered_once(got: list[Received]) -> Counter[str]:
    """How often each event was answered 200 (more than once would be a duplicate)."""
    return Counter(r.event["id"] for r in got if r.status == 200)


@pytest.mark.parametrize("bare_db_url", ["sqlite", "postgresql"], indirect=True)
async def test_gifts_arrive_signed_retried_and_combined(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    verify = documented_verify()
    retry_base_ms = 300
    env = server_env(
        bare_db_url,
        GIFTWAVE_LIVE_COMBO_QUIET_MS="600",
        GIFTWAVE_WEBHOOK_RETRY_BASE_MS=str(retry_base_ms),
    )
    migrate(env)
    with Receiver() as receiver, ServerGroup(tmp_path, env) as servers:
        [server] = servers.start("a")
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            scene = await Scene(http).setup()
            alerts = await scene.hook(
                receiver.url("/alerts"), ["gift", "combo_end", "goal_reached"]
            )
            flaky = await scene.hook(receiver.url("/flaky"), ["gift"])
            receiver.fail_first("/flaky", 2)  # every delivery: 500, 500, then 200
            r = await http.put(
                f"/v1/streams/{scene.stream}/goal",
                json={"kind": "coins", "gift_id": "rose", "target": 3, "title": "3 roses"},
                headers=scene.creator,
            )
            assert r.status_code == 200, r.text
            goal_id = r.json()["goal_id"]
            for i in range(3):
                await scene.gift("rose", f"r{i}")
            await scene.gift("corgi", "c0")

            # 4 gifts, 2 combo ends (roses x3, the corgi), 1 goal; then nothing more.
            got = await receiver.until(lambda got: len(got) >= 7, path="/alerts")
            await asyncio.sleep(
                2.0
            )  # past the combo window and its grace: a second combo_end would be here
            got = receiver.got("/alerts")
            assert len(got) == 7, [r.event for r in got]
            assert {r.headers["giftwave-event"] for r in got} == {
                "gift",
                "combo_end",
                "goal_reached",
            }
            for received in got:
                assert received.headers["giftwave-event"] == received.event["type"]
                signature = received.headers["giftwave-signature"]
                assert verify(alerts["secret"], received.body, signature)
                assert not verify(flaky["secret"], received.body, signature)
                assert not verify(alerts["secret"], received.body + b" ", signature)
            assert len({r.delivery for r in got}) == 7

            gifts = by_type(got, "gift")
            assert sorted(g["id"] for g in gifts) == sorted(
                scene.send_id(k) for k in ("r0", "r1", "r2", "c0")
            )
            corgi = next(g for g in gifts if g["data"]["gift_id"] == "corgi")
            assert corgi["data"] == {
                "stream_id": scene.stream,
                "send_id": scene.send_id("c0"),
                "sender_id": scene.viewer_id,
                "sender": corgi["data"]["sender"],
                "gift_id": "corgi",
                "count": 1,
                "coins": 299,
                "diamonds": 299,
            }
            ends = {e["data"]["gift_id"]: e for e in by_type(got, "combo_end")}
            assert set(ends) == {"rose", "corgi"}
            rose = ends["rose"]["data"]
            assert (rose["count"], rose["coins"], rose["sends"]) == (3, 3, 3)
            assert rose["combo_id"] == scene.send_id("r0")
            assert ends["rose"]["id"] == "combo:" + scene.send_id("r0")
            assert (ends["corgi"]["data"]["count"], ends["corgi"]["data"]["coins"]) == (1, 299)
            [goal] = by_type(got, "goal_reached")
            assert goal["id"] == f"goal_reached:{goal_id}"
            assert (goal["data"]["target"], goal["data"]["title"]) == (3, "3 roses")
            assert goal["data"]["progress"] >= 3

            # The flaky endpoint got each delivery three times, same id, growing gaps.
            flaky_got = await receiver.until(lambda got: len(got) >= 12, path="/flaky")
            assert len(flaky_got) == 12
            attempts: dict[str, list[Received]] = {}
            for received in flaky_got:
                attempts.setdefault(received.delivery, []).append(received)
            assert len(attempts) == 4
            for tries in attempts.values():
                assert [t.status for t in tries] == [500, 500, 200]
                assert len({t.event["id"] for t in tries}) == 1
                assert all(
                    verify(flaky["secret"], t.body, t.headers["giftwave-signature"]) for t in tries
                )
                first_gap, second_gap = tries[1].at_s - tries[0].at_s, tries[2].at_s - tries[1].at_s
                # Backoff: base, then three times base, each less at most the 20% jitter.
                assert first_gap >= 0.8 * retry_base_ms / 1000, first_gap
                assert second_gap >= 0.8 * 3 * retry_base_ms / 1000, second_gap
            for _ in range(100):
                listed = await scene.deliveries(flaky["id"])
                if all(d["status"] == "delivered" for d in listed):
                    break
                await asyncio.sleep(0.05)
            assert [(d["status"], d["attempts"], d["last_status"]) for d in listed] == [
                ("delivered", 3, 200)
            ] * 4
            assert {str(d["id"]) for d in listed} == set(attempts)

            r = await http.post(f"{HOOKS}/{alerts['id']}/test", headers=scene.creator)
            assert r.status_code == 202, r.text
            got = await receiver.until(lambda got: len(got) == 8, path="/alerts")
            assert got[-1].event["type"] == "ping"
            assert verify(alerts["secret"], got[-1].body, got[-1].headers["giftwave-signature"])


@pytest.mark.parametrize("bare_db_url", ["sqlite", "postgresql"], indirect=True)
async def test_deliveries_pending_at_a_kill_9_are_delivered_after_restart(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    """The receiver is down; gifts are acknowledged, their deliveries fail once and wait to be
    retried, a combo is still open; the server is killed. Restarted, it delivers them all,
    and the open combo ends with its total."""
    env = server_env(
        bare_db_url,
        GIFTWAVE_LIVE_COMBO_QUIET_MS="3000",
        GIFTWAVE_WEBHOOK_RETRY_BASE_MS="2000",
        GIFTWAVE_WEBHOOK_TIMEOUT_S="1",
    )
    migrate(env)
    with Receiver() as receiver, ServerGroup(tmp_path, env) as servers:
        receiver.fail_all("/down", 503)
        [first] = servers.start("first")
        async with httpx.AsyncClient(base_url=first.base_url, timeout=30) as http:
            scene = await Scene(http).setup()
            hook = await scene.hook(receiver.url("/down"), ["gift", "combo_end"])
            await scene.gift("corgi", "c0")
            await scene.gift("rose", "r0")
            await scene.gift("rose", "r1")
            # Each delivery tried once and refused, the next try seconds away; the roses'
            # combo is open for 3 s more: now the crash.
            deadline = time.monotonic() + 10
            while True:
                listed = await scene.deliveries(hook["id"])
                if len(listed) == 4 and all(d["attempts"] >= 1 for d in listed):
                    break
                assert time.monotonic() < deadline, listed
                await asyncio.sleep(0.02)
            first.kill()
            assert sorted(d["type"] for d in listed) == ["combo_end", "gift", "gift", "gift"]
            assert all(d["status"] == "pending" for d in listed)
        assert {r.status for r in receiver.got()} == {503}
        assert len({r.delivery for r in receiver.got()}) == 4

        receiver.fail_all("/down", None)
        [second] = servers.start("second")
        got = await receiver.until(lambda got: len(delivered_once(got)) == 5, wait_s=30)
        expected = {
            scene.send_id("c0"),
            scene.send_id("r0"),
            scene.send_id("r1"),
            "combo:" + scene.send_id("c0"),
            "combo:" + scene.send_id("r0"),
        }
        assert set(delivered_once(got)) == expected
        rose = next(e for e in by_type(got, "combo_end") if e["data"]["gift_id"] == "rose")
        assert (rose["data"]["count"], rose["data"]["sends"]) == (2, 2)
        async with httpx.AsyncClient(base_url=second.base_url, timeout=30) as http:
            scene.http = http
            for _ in range(100):
                listed = await scene.deliveries(hook["id"])
                if all(d["status"] == "delivered" for d in listed):
                    break
                await asyncio.sleep(0.05)
            assert [d["status"] for d in listed] == ["delivered"] * 5


@pytest.mark.parametrize("bare_db_url", ["postgresql"], indirect=True)
async def test_two_nodes_over_redis_deliver_each_event_once(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    """Gifts to one combo sent alternately to two nodes; both nodes hold the room and see the
    goal reached; both dispatchers claim from one outbox. Each event arrives once."""
    env = server_env(
        bare_db_url,
        GIFTWAVE_LIVE_COMBO_QUIET_MS="1000",
        GIFTWAVE_BROKER_URL=os.environ.get("GIFTWAVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    migrate(env)
    with Receiver() as receiver, ServerGroup(tmp_path, env) as servers:
        a, b = servers.start("a", "b")
        async with (
            httpx.AsyncClient(base_url=a.base_url, timeout=30) as on_a,
            httpx.AsyncClient(base_url=b.base_url, timeout=30) as on_b,
        ):
            scene = await Scene(on_a).setup()
            await scene.hook(receiver.url("/alerts"), ["gift", "combo_end", "goal_reached"])
            r = await on_a.put(
                f"/v1/streams/{scene.stream}/goal",
                json={"kind": "coins", "target": 5, "title": "five"},
                headers=scene.creator,
            )
            assert r.status_code == 200, r.text
            for i in range(6):
                await scene.gift("rose", f"r{i}", via=on_a if i % 2 else on_b)
            await scene.gift("corgi", "c0", via=on_b)

            def complete(got: list[Received]) -> bool:
                return len(delivered_once(got)) == 7 + 2 + 1

            got = await receiver.until(complete, wait_s=30)
            await asyncio.sleep(3.0)  # two windows and the grace: time for any duplicate
            got = receiver.got()
            assert all(n == 1 for n in delivered_once(got).values()), delivered_once(got)
            assert len(got) == 10, [r.event for r in got]
            ends = {e["data"]["gift_id"]: e["data"] for e in by_type(got, "combo_end")}
            assert (ends["rose"]["count"], ends["rose"]["combo_id"]) == (6, scene.send_id("r0"))
            assert ends["corgi"]["count"] == 1
            [goal] = by_type(got, "goal_reached")
            assert goal["data"]["title"] == "five"

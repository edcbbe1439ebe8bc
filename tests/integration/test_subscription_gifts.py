"""Gifted subscriptions on SQLite and PostgreSQL (the room's news on memory and Redis): K
subscriptions bought in a live room go to K eligible viewers there, in one chain; every
refusal is problem+json with nothing written; a gifted period does not renew from the
recipient's coins; the webhooks (docs/economy.md, "Gifted subscriptions")."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest
from economy_client import (
    ADMIN,
    AppFactory,
    Clock,
    Person,
    assert_problem,
    clock,
    economy_app,
    grant,
    register,
)
from sqlalchemy import Engine, func, select
from webhook_receiver import Receiver

from giftwave import metrics
from giftwave.api.state import app_services
from giftwave.clock import now_us
from giftwave.db.tables import (
    subscription_gift_recipients,
    subscription_gifts,
    subscription_periods,
    subscriptions,
    transfers,
    webhook_deliveries,
)
from giftwave.ledger.verify import verify_ledger
from giftwave.live import presence as room_presence
from giftwave.live.events import RoomEvent, SubsGiftedShown
from giftwave.live.presence import RoomPresence, record
from giftwave.live.room import Room
from giftwave.realtime.sockets import ListSink

__all__ = ["clock", "economy_app"]

PRICE = 500
SETTINGS: dict[str, Any] = {
    "subscription_period_s": 3600,
    "subscription_grace_s": 0,
    "subscription_retry_s": 600,
    "subscription_sweep_interval_s": 3600,  # the tests sweep themselves
    "subscription_min_coins": 100,
    "subscription_max_coins": 10_000,
    "subscription_gift_max_count": 20,
    "webhook_allow_private_addresses": True,
}
REDIS_URL = os.environ.get("GIFTWAVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def db_of(client: httpx.AsyncClient) -> Engine:
    db: Engine = app_services(client.app).db  # type: ignore[attr-defined]
    return db


def written(client: httpx.AsyncClient) -> tuple[int, int, int, int]:
    """Transfers, purchases, recipients' marks and subscription rows: what a refusal leaves."""
    with db_of(client).connect() as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (transfers, subscription_gifts, subscription_gift_recipients, subscriptions)
        )


async def present(client: httpx.AsyncClient, stream: str, *people: Person) -> None:
    """People in the room as another node sees them (its presence rows, written now)."""

    def write() -> None:
        with db_of(client).begin() as conn:
            record(conn, {stream: [p.id for p in people]}, now_us())

    await asyncio.to_thread(write)


async def room(client: httpx.AsyncClient, coins: int) -> tuple[Person, Person, str]:
    """A creator live with a price, and a buyer holding ``coins``."""
    creator = await register(client, "creator")
    r = await creator.client.put(
        "/v1/me/subscription-price", json={"price_coins": PRICE}, headers=creator.auth
    )
    assert r.status_code == 200, r.text
    buyer = await register(client)
    await grant(client, buyer, coins)
    return creator, buyer, await creator.go_live()


async def gift_subs(buyer: Person, stream: str, count: Any, key: str = "k1") -> httpx.Response:
    return await buyer.post(
        f"/v1/streams/{stream}/gifted-subscriptions", {"count": count, "idempotency_key": key}
    )


async def test_k_subscriptions_go_to_k_eligible_viewers_in_one_chain(
    economy_app: AppFactory, clock: Clock
) -> None:
    async with economy_app(**SETTINGS) as client:
        creator, buyer, stream = await room(client, 5_000)
        viewers = [await register(client) for _ in range(4)]
        opted_out, subscriber, *eligible = viewers
        r = await opted_out.client.put(
            "/v1/me/gifted-subscriptions", json={"accept": False}, headers=opted_out.auth
        )
        assert r.json() == {"accept": False}
        assert (await opted_out.get("/v1/me/gifted-subscriptions")).json() == {"accept": False}
        for loose in ("yes", "true", 1, None):  # a switch is a JSON boolean, nothing like one
            r = await opted_out.client.put(
                "/v1/me/gifted-subscriptions", json={"accept": loose}, headers=opted_out.auth
            )
            assert r.status_code == 422, r.text
        assert (await subscriber.get("/v1/me/gifted-subscriptions")).json() == {"accept": True}
        await grant(client, subscriber, PRICE)
        r = await subscriber.post(f"/v1/creators/{creator.id}/subscription")
        assert r.status_code == 201, r.text
        outsider = await register(client)  # not in the room
        await present(client, stream, buyer, creator, *viewers)

        r = await gift_subs(buyer, stream, 2)
        assert r.status_code == 201, r.text
        body = r.json()
        got = {x["user_id"] for x in body["recipients"]}
        assert got == {p.id for p in eligible}
        assert all(x["months"] == 1 for x in body["recipients"])
        assert (body["count"], body["coins"], body["price_coins"]) == (2, 2 * PRICE, PRICE)
        assert await buyer.coins() == 5_000 - 2 * PRICE
        assert (await creator.wallet())["diamonds"] == 3 * PRICE  # two gifted, one paid
        again = await gift_subs(buyer, stream, 2)
        assert again.status_code == 200, again.text
        assert again.json()["recipients"] == body["recipients"]
        assert await buyer.coins() == 5_000 - 2 * PRICE
        assert_problem(await gift_subs(buyer, stream, 1), 409, "idempotency_key_reused")
        for person in eligible:
            [sub] = (await person.get("/v1/me/subscriptions")).json()
            assert (sub["status"], sub["months"], sub["has_access"]) == ("gifted", 1, True)
        assert (await outsider.get("/v1/me/subscriptions")).json() == []
        with db_of(client).connect() as conn:
            legs = conn.execute(
                select(transfers.c.id, transfers.c.batch_seq)
                .where(transfers.c.id.like(f"gsub:{buyer.id}:k1:%"))
                .order_by(transfers.c.seq)
            ).all()
            gifted_by = conn.execute(
                select(subscription_periods.c.gifted_by).where(
                    subscription_periods.c.subscriber_id.in_([p.id for p in eligible])
                )
            ).scalars()
            assert set(gifted_by) == {buyer.id}
            assert verify_ledger(conn).ok
        # One chain, committed in one batch: each recipient's coins and diamonds.
        assert len({batch for _, batch in legs}) == 1
        assert {i for i, _ in legs} >= {
            f"gsub:{buyer.id}:k1:{n}:{leg}" for n in range(2) for leg in "cd"
        }
        figures = (await creator.get("/v1/me/subscribers")).json()
        assert (figures["total"], figures["revenue_coins_30d"]) == (3, 3 * PRICE)
        assert (figures["new_30d"], figures["gifted_30d"]) == (3, 2)
        # The studio's page, as a browser asks for it (the session cookie).
        token = creator.auth["Authorization"].removeprefix("Bearer ")
        r = await client.get("/studio/subscriptions", headers={"Cookie": f"gw_session={token}"})
        assert r.status_code == 200, r.text
        assert 'id="sub-gifted"><bdi>2</bdi>' in r.text
        # The economy report counts every period's coins, and the gifted ones apart.
        r = await client.get("/v1/admin/analytics/economy", headers=ADMIN)
        assert r.status_code == 200, r.text
        report = r.json()
        assert (report["subscription_coins"], report["subscriptions"]) == (3 * PRICE, 3)
        assert (report["gifted_subscription_coins"], report["gifted_subscriptions"]) == (
            2 * PRICE,
            2,
        )
        assert report["subscription_diamonds"] == 3 * PRICE
        granted = 5_000 + PRICE
        assert report["coins_outstanding"] == granted - 3 * PRICE


async def test_refusals_are_problems_and_write_nothing(
    economy_app: AppFactory, clock: Clock
) -> None:
    async with economy_app(**SETTINGS) as client:
        creator, buyer, stream = await room(client, 1_200)
        viewers = [await register(client) for _ in range(3)]
        await present(client, stream, buyer, *viewers)
        before = written(client)
        for count in (0, -1, 21, 10**6):
            body = assert_problem(await gift_subs(buyer, stream, count), 422, "invalid_count")
            assert body["max_count"] == 20
        assert_problem(await gift_subs(buyer, stream, 10**30), 422, "invalid_request")
        assert_problem(await gift_subs(buyer, stream, "five"), 422, "invalid_request")
        r = await buyer.post(
            f"/v1/streams/{stream}/gifted-subscriptions", {"count": 1, "idempotency_key": "a b"}
        )
        assert_problem(r, 422, "invalid_request")
        r = await buyer.post(
            f"/v1/streams/{stream}/gifted-subscriptions",
            {"count": 1, "idempotency_key": "k" * 2_000_000},  # megabytes of key
        )
        assert_problem(r, 413, "payload_too_large")  # the body limit, before any parsing
        r = await buyer.post(
            f"/v1/streams/{stream}/gifted-subscriptions",
            {"count": 1, "idempotency_key": "k" * 20_000},  # under the body limit, too long a key
        )
        assert_problem(r, 422, "invalid_request")
        # Three periods cost 1,500: the buyer has 1,200, so none of them is bought.
        assert_problem(await gift_subs(buyer, stream, 3), 402, "insufficient_coins")
        body = assert_problem(await gift_subs(buyer, stream, 4), 409, "not_enough_gift_recipients")
        assert body["eligible"] == 3
        assert_problem(await gift_subs(creator, stream, 1), 403, "cannot_subscribe_self")
        assert_problem(await gift_subs(buyer, "nosuchstream", 1), 404, "stream_not_found")
        r = await client.post(
            f"/v1/streams/{stream}/gifted-subscriptions", json={"count": 1, "idempotency_key": "x"}
        )
        assert r.status_code == 401
        assert (await client.get("/v1/me/gifted-subscriptions")).status_code == 401
        assert written(client) == before
        # The buyer alone in the room: nobody to gift to.
        alone_creator, alone_buyer, alone = await room(client, 5_000)
        await present(client, alone, alone_buyer, alone_creator)
        before = written(client)  # the new buyer's coins
        body = assert_problem(
            await gift_subs(alone_buyer, alone, 1), 409, "not_enough_gift_recipients"
        )
        assert body["eligible"] == 0
        r = await alone_creator.post(f"/v1/streams/{alone}/end")
        assert r.status_code == 200, r.text
        assert_problem(await gift_subs(alone_buyer, alone, 1), 409, "stream_not_live")
        assert written(client) == before
        # Another buyer's key is their own: it buys nothing of the first buyer's.
        await grant(client, viewers[0], 1_000)
        r = await gift_subs(viewers[0], stream, 1, key="k1")
        assert r.status_code == 201, r.text
        others = {buyer.id, viewers[1].id, viewers[2].id}  # the first buyer may receive one
        assert {x["user_id"] for x in r.json()["recipients"]} <= others


async def test_a_gifted_period_does_not_renew_unless_the_recipient_subscribes(
    economy_app: AppFactory, clock: Clock
) -> None:
    async with economy_app(**SETTINGS) as client:
        creator, buyer, stream = await room(client, 5_000)
        keeps, ends = await register(client), await register(client)
        for person in (keeps, ends):
            await grant(client, person, 2_000)
        await present(client, stream, keeps, ends)
        assert (await gift_subs(buyer, stream, 2)).status_code == 201
        r = await keeps.post(f"/v1/creators/{creator.id}/subscription")  # chooses to renew
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["months"]) == ("active", 1)
        clock.advance(1.01)
        subs = app_services(client.app).economy.subscriptions  # type: ignore[attr-defined]
        await subs.sweep()
        [kept] = (await keeps.get("/v1/me/subscriptions")).json()
        [ended] = (await ends.get("/v1/me/subscriptions")).json()
        assert (kept["status"], kept["months"], kept["has_access"]) == ("active", 2, True)
        assert (ended["status"], ended["months"], ended["has_access"]) == ("ended", 1, False)
        assert await keeps.coins() == 2_000 - PRICE
        assert await ends.coins() == 2_000


async def test_a_crash_before_the_periods_are_given_is_caught_up(
    economy_app: AppFactory, clock: Clock
) -> None:
    async with economy_app(**SETTINGS) as client:
        _, buyer, stream = await room(client, 5_000)
        viewer = await register(client)
        await present(client, stream, viewer)
        assert (await gift_subs(buyer, stream, 1)).status_code == 201
        # As if the process died after the commit: the period and its mark undone.
        with db_of(client).begin() as conn:
            conn.execute(subscription_gift_recipients.delete())
            conn.execute(subscription_periods.delete())
            conn.execute(subscriptions.delete())
        gifts = app_services(client.app).economy.subscription_gifts  # type: ignore[attr-defined]
        assert await asyncio.to_thread(gifts.catch_up) == 1
        assert await asyncio.to_thread(gifts.catch_up) == 0
        [sub] = (await viewer.get("/v1/me/subscriptions")).json()
        assert (sub["status"], sub["months"]) == ("gifted", 1)


async def hooked_room(
    client: httpx.AsyncClient, receiver: Receiver, kinds: list[str]
) -> tuple[Person, Person, str]:
    """``room``, its creator's webhook endpoint taking ``kinds`` at the receiver's ``/subs``."""
    creator, buyer, stream = await room(client, 5_000)
    r = await creator.post(
        "/v1/creators/me/webhooks", {"url": receiver.url("/subs"), "events": kinds}
    )
    assert r.status_code == 201, r.text
    return creator, buyer, stream


async def test_webhooks_say_started_renewed_gifted_and_lapsed(
    economy_app: AppFactory, clock: Clock
) -> None:
    kinds = [
        "subscription.started",
        "subscription.renewed",
        "subscription.lapsed",
        "subscription.gifted",
    ]
    with Receiver() as receiver:
        async with economy_app(**SETTINGS) as client:
            creator, buyer, stream = await hooked_room(client, receiver, kinds)
            fan = await register(client)
            await grant(client, fan, 2 * PRICE)
            assert (await fan.post(f"/v1/creators/{creator.id}/subscription")).status_code == 201
            subs = app_services(client.app).economy.subscriptions  # type: ignore[attr-defined]
            clock.advance(1.01)
            await subs.sweep()  # renewed from the fan's coins
            clock.advance(1.01)
            await subs.sweep()  # no coins left, no grace: lapsed
            await present(client, stream, fan)
            assert (await gift_subs(buyer, stream, 1)).status_code == 201
            app_services(client.app).webhooks.wake()  # type: ignore[attr-defined]
            # The fan's own start, renewal, lapse; the gift and the start it gave.
            await receiver.until(lambda _: len(receiver.deliveries("/subs")) >= 5, "/subs")
            got = receiver.deliveries("/subs")
            by_type = {x.event["type"]: x.event for x in got}
            assert set(by_type) == set(kinds)
            assert by_type["subscription.renewed"]["data"]["months"] == 2
            assert by_type["subscription.lapsed"]["data"]["status"] == "lapsed"
            gifted = by_type["subscription.gifted"]["data"]
            assert (gifted["buyer_id"], gifted["count"]) == (buyer.id, 1)
            assert [x["user_id"] for x in gifted["recipients"]] == [fan.id]
            assert gifted["recipients"][0]["months"] == 3
            starts = [x.event["data"] for x in got if x.event["type"] == "subscription.started"]
            got_starts = sorted((d["months"], d["gifted_by"]) for d in starts)
            assert got_starts == [(1, None), (3, buyer.id)]


async def test_each_gifted_start_is_a_subscription_started_naming_the_buyer(
    economy_app: AppFactory, clock: Clock
) -> None:
    kinds = ["subscription.started", "subscription.gifted"]
    with Receiver() as receiver:
        async with economy_app(**SETTINGS) as client:
            _, buyer, stream = await hooked_room(client, receiver, kinds)
            viewers = [await register(client), await register(client)]
            await present(client, stream, *viewers)
            assert (await gift_subs(buyer, stream, 2)).status_code == 201
            assert (await gift_subs(buyer, stream, 2)).status_code == 200  # a retry: no new rows
            with db_of(client).connect() as conn:
                queued = conn.execute(select(func.count()).select_from(webhook_deliveries))
                assert queued.scalar_one() == 3
            app_services(client.app).webhooks.wake()  # type: ignore[attr-defined]
            got = await receiver.until(lambda rs: len(rs) >= 3, "/subs")
            started = sorted(
                (x.event["data"] for x in got if x.event["type"] == "subscription.started"),
                key=lambda d: int(d["subscriber_id"]),
            )
            assert [d["subscriber_id"] for d in started] == sorted(v.id for v in viewers)
            assert {(d["gifted_by"], d["status"], d["months"]) for d in started} == {
                (buyer.id, "gifted", 1)
            }


@pytest.mark.parametrize("broker", ["memory", "redis"])
async def test_the_room_hears_who_gifted_and_who_received(
    economy_app: AppFactory, clock: Clock, broker: str
) -> None:
    url = "memory://" if broker == "memory" else REDIS_URL
    async with economy_app(**SETTINGS, broker_url=url) as client:
        _, buyer, stream = await room(client, 5_000)
        viewer = await register(client)
        hub = app_services(client.app).hub  # type: ignore[attr-defined]
        # The viewer's socket on this node: present without any presence row.
        _, watcher = await hub.subscribe(stream, ListSink(), viewer.id)
        said: list[SubsGiftedShown] = []

        def watch(room: Room, events: list[RoomEvent]) -> None:
            if room.stream_id == stream:
                said.extend(e for e in events if isinstance(e, SubsGiftedShown))

        hub.add_observer(watch)
        assert (await gift_subs(buyer, stream, 1)).status_code == 201
        assert (await gift_subs(buyer, stream, 1)).status_code == 200  # said once
        for _ in range(200):
            if said:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        hub.unsubscribe(stream, watcher)
        [event] = said
        assert (event.buyer, event.count) == (buyer.user["handle"], 1)
        assert [(r.user_id, r.handle, r.months) for r in event.recipients] == [
            (viewer.id, viewer.user["handle"], 1)
        ]


async def test_two_nodes_see_the_viewer_the_room_and_the_badge(
    economy_app: AppFactory, clock: Clock
) -> None:
    """The viewer's socket on node A, the purchase on node B (Redis between them): B finds
    the viewer through A's presence rows, A's room says it, A's badge cache is dropped."""
    async with (
        economy_app(**SETTINGS, broker_url=REDIS_URL) as a,
        economy_app(**SETTINGS, broker_url=REDIS_URL) as b,
    ):
        creator, buyer, stream = await room(b, 5_000)
        viewer = await register(a)
        hub = app_services(a.app).hub  # type: ignore[attr-defined]
        _, watcher = await hub.subscribe(stream, ListSink(), viewer.id)
        said: list[SubsGiftedShown] = []
        hub.add_observer(
            lambda room, events: said.extend(e for e in events if isinstance(e, SubsGiftedShown))
        )
        badges = app_services(a.app).economy.subscriptions.badges  # type: ignore[attr-defined]
        assert await badges.months(creator.id, viewer.id) == 0  # cached on A
        refused = await gift_subs(buyer, stream, 1)
        assert_problem(refused, 409, "not_enough_gift_recipients")  # A has not written yet
        presence = app_services(a.app).economy.subscription_gifts.presence  # type: ignore[attr-defined]
        assert await presence.write() == 1
        r = await gift_subs(buyer, stream, 1, key="k2")
        assert r.status_code == 201, r.text
        assert [x["user_id"] for x in r.json()["recipients"]] == [viewer.id]
        for _ in range(200):
            if said and await badges.months(creator.id, viewer.id) == 1:
                break
            await asyncio.sleep(0.05)
        hub.unsubscribe(stream, watcher)
        assert [e.buyer for e in said] == [buyer.user["handle"]]
        assert await badges.months(creator.id, viewer.id) == 1


@pytest.mark.parametrize("watching", [{}, {"s1": [7, 8]}], ids=["nobody", "two"])
async def test_the_presence_loop_writes_at_its_interval_whoever_is_watching(
    sa_engine: Engine, watching: dict[str, list[int]]
) -> None:
    """Its write returns a row count: read as a due time, 0 rows spun an idle server's core."""
    asked = 0

    def watchers() -> dict[str, list[int]]:
        nonlocal asked
        asked += 1
        return watching

    def failed_runs() -> float:
        got = metrics.registry().get_sample_value(
            "giftwave_loop_runs_total", {"loop": "room-presence", "outcome": "error"}
        )
        return got or 0.0

    failed_before = failed_runs()
    presence = RoomPresence(sa_engine, watchers, interval_s=0.05, window_s=1.0)
    presence.start()
    await asyncio.sleep(0.4)
    await presence.stop()
    assert 3 <= asked <= 10  # about one write per 0.05 s
    assert failed_runs() == failed_before
    with sa_engine.connect() as conn:
        assert room_presence.present(conn, "s1", 0) == sorted(watching.get("s1", []))

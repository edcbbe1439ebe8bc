"""Webhook endpoints through the API, in process, on SQLite and PostgreSQL: registering,
listing, deleting, testing; bad input refused with its code and nothing written; the outbox's
limits (pending cap, attempts, disabling); battle_ended queued by the function battles call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
from economy_client import (
    ADMIN,
    AppFactory,
    Clock,
    Person,
    assert_problem,
    clock,
    economy_app,
    register,
)
from sqlalchemy import Engine, func, insert, select
from webhook_receiver import Receiver

from giftwave.api.state import app_services
from giftwave.db.tables import webhook_deliveries, webhook_endpoints
from giftwave.economy.gifting import GiftSent
from giftwave.live.battles import Battle, BattleStatus, Side, Winner
from giftwave.webhooks.combos import close_quiet, track_gift
from giftwave.webhooks.outbox import (
    claim_due,
    enqueue_battle_ended,
    fail_undeliverable,
    prune,
)

__all__ = ["clock", "economy_app"]

HOOKS = "/v1/creators/me/webhooks"
# A public address as a literal: registration resolves a name, and these tests never ask a
# DNS server (nothing is delivered there: no endpoint subscribed here is ever sent an event).
PUBLIC_HOOK = "https://93.184.215.14/h"
LOCAL = {"webhook_allow_private_addresses": True}


def _db(client: httpx.AsyncClient) -> Engine:
    db: Engine = app_services(client.app).db
    return db


def _rows(client: httpx.AsyncClient) -> tuple[int, int]:
    """(endpoints, deliveries) stored."""
    with _db(client).connect() as conn:
        endpoints = conn.execute(select(func.count()).select_from(webhook_endpoints)).scalar_one()
        deliveries = conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one()
    return int(endpoints), int(deliveries)


async def _eventually(
    read: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], wait_s: float = 10
) -> Any:
    """What ``read`` returns once ``done`` says so (bounded): the app records after it sends."""
    deadline = time.monotonic() + wait_s
    while not done(value := await read()):
        assert time.monotonic() < deadline, value
        await asyncio.sleep(0.05)
    return value


async def _creator(client: httpx.AsyncClient) -> Person:
    return await register(client, "creator")


async def _hook(who: Person, url: str, events: list[str]) -> dict[str, Any]:
    r = await who.post(HOOKS, {"url": url, "events": events})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_a_creator_registers_lists_tests_and_deletes(economy_app: AppFactory) -> None:
    with Receiver() as receiver:
        async with economy_app(**LOCAL) as client:
            creator = await _creator(client)
            made = await _hook(creator, receiver.url("/a"), ["gift", "combo_end", "gift"])
            assert made["secret"].startswith("whsec_")
            assert len(made["secret"]) > 30
            assert made["events"] == ["combo_end", "gift"]
            listed = (await creator.get(HOOKS)).json()
            assert [h["id"] for h in listed] == [made["id"]]
            assert "secret" not in listed[0]
            assert (listed[0]["disabled_at_us"], listed[0]["dropped_events"]) == (None, 0)

            r = await creator.post(f"{HOOKS}/{made['id']}/test")
            assert r.status_code == 202, r.text
            [ping] = await receiver.until(lambda got: len(got) == 1)
            assert ping.event["type"] == "ping"
            assert ping.event["id"] == r.json()["event_id"]
            assert ping.delivery == str(r.json()["delivery_id"])

            async def only_delivery() -> dict[str, Any]:
                r = await creator.get(f"{HOOKS}/{made['id']}/deliveries")
                [only] = r.json()["deliveries"]
                return dict(only)

            # Received is not yet recorded: the dispatcher records its results after the answer.
            delivery = await _eventually(only_delivery, lambda d: d["status"] != "pending")
            assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
                "delivered",
                1,
                200,
            )
            assert delivery["payload"] == ping.event

            r = await creator.client.delete(f"{HOOKS}/{made['id']}", headers=creator.auth)
            assert r.status_code == 204, r.text
            assert (await creator.get(HOOKS)).json() == []
            assert _rows(client) == (0, 0)
            r = await creator.get(f"{HOOKS}/{made['id']}/deliveries")
            assert_problem(r, 404, "webhook_not_found")


BAD_URLS = [
    ("ftp://example.com/hook", "invalid_webhook_url"),
    ("javascript:alert(1)", "invalid_webhook_url"),
    ("https://", "invalid_webhook_url"),
    ("https://user:pw@example.com/hook", "invalid_webhook_url"),
    ("https://example.com:99999/hook", "invalid_webhook_url"),
    ("https://example.com/a b", "invalid_webhook_url"),
    ("https://exämple.com/", "invalid_webhook_url"),
    ("http://127.0.0.1:9/hook", "webhook_url_not_allowed"),
    ("http://10.1.2.3/hook", "webhook_url_not_allowed"),
    ("http://[::1]/hook", "webhook_url_not_allowed"),
    ("http://169.254.169.254/latest/meta-data", "webhook_url_not_allowed"),
    ("http://localhost:8000/hook", "webhook_url_not_allowed"),
    ("http://printer.local/hook", "webhook_url_not_allowed"),
]


async def test_bad_registrations_are_refused_and_write_nothing(economy_app: AppFactory) -> None:
    async with economy_app() as client:  # private addresses refused: the default
        creator = await _creator(client)
        for url, code in BAD_URLS:
            r = await creator.post(HOOKS, {"url": url, "events": ["gift"]})
            assert_problem(r, 422, code)
        r = await creator.post(HOOKS, {"url": "https://example.com/" + "x" * 1024, "events": []})
        assert_problem(r, 422, "invalid_request")
        for events in (["gift", "gifts"], ["ping"], ["GIFT"]):
            r = await creator.post(HOOKS, {"url": PUBLIC_HOOK, "events": events})
            assert_problem(r, 422, "unknown_webhook_event")
        r = await creator.post(HOOKS, {"url": PUBLIC_HOOK, "events": []})
        assert_problem(r, 422, "invalid_request")
        viewer = await register(client, "viewer")
        r = await viewer.post(HOOKS, {"url": PUBLIC_HOOK, "events": ["gift"]})
        assert_problem(r, 403, "not_a_creator")
        assert _rows(client) == (0, 0)

        for i in range(10):
            await _hook(creator, f"{PUBLIC_HOOK}{i}", ["gift"])
        r = await creator.post(HOOKS, {"url": f"{PUBLIC_HOOK}11", "events": ["gift"]})
        assert_problem(r, 409, "webhook_limit_reached")
        assert _rows(client) == (10, 0)

        # Another creator's endpoint does not exist for you, whatever you try.
        theirs = (await creator.get(HOOKS)).json()[0]["id"]
        other = await _creator(client)
        assert (await other.get(HOOKS)).json() == []
        r = await other.client.delete(f"{HOOKS}/{theirs}", headers=other.auth)
        assert_problem(r, 404, "webhook_not_found")
        assert_problem(await other.post(f"{HOOKS}/{theirs}/test"), 404, "webhook_not_found")
        r = await other.get(f"{HOOKS}/{theirs}/deliveries")
        assert_problem(r, 404, "webhook_not_found")
        assert_problem(await other.post(f"{HOOKS}/999999/test"), 404, "webhook_not_found")
        assert _rows(client) == (10, 0)


async def _live_with_viewer(client: httpx.AsyncClient, creator: Person) -> tuple[str, Person]:
    stream = await creator.go_live()
    viewer = await register(client, "viewer")
    r = await client.post(
        f"/v1/admin/users/{viewer.id}/coins",
        json={"coins": 100_000, "idempotency_key": "grant"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    return stream, viewer


async def test_past_the_pending_cap_events_are_dropped_and_counted(
    economy_app: AppFactory,
) -> None:
    with Receiver() as receiver:
        receiver.fail_all("/down")
        settings = {**LOCAL, "webhook_max_pending_per_endpoint": 3, "webhook_retry_base_ms": 60_000}
        async with economy_app(**settings) as client:
            creator = await _creator(client)
            hook = await _hook(creator, receiver.url("/down"), ["gift"])
            stream, viewer = await _live_with_viewer(client, creator)
            for _ in range(5):
                r = await viewer.gift(stream, "corgi")
                assert r.status_code == 201, r.text
            [listed] = (await creator.get(HOOKS)).json()
            assert listed["dropped_events"] == 2
            r = await creator.get(f"{HOOKS}/{hook['id']}/deliveries")
            deliveries = r.json()["deliveries"]
            assert [d["status"] for d in deliveries] == ["pending"] * 3
            assert_problem(
                await creator.post(f"{HOOKS}/{hook['id']}/test"), 409, "webhook_backlog_full"
            )


async def test_a_delivery_is_failed_after_its_last_attempt(economy_app: AppFactory) -> None:
    with Receiver() as receiver:
        receiver.fail_all("/down", 502)
        settings = {**LOCAL, "webhook_max_attempts": 3, "webhook_retry_base_ms": 20}
        async with economy_app(**settings) as client:
            creator = await _creator(client)
            hook = await _hook(creator, receiver.url("/down"), ["gift"])
            r = await creator.post(f"{HOOKS}/{hook['id']}/test")
            assert r.status_code == 202, r.text
            await receiver.until(lambda got: len(got) == 3)

            async def delivery() -> dict[str, Any]:
                r = await creator.get(f"{HOOKS}/{hook['id']}/deliveries")
                [only] = r.json()["deliveries"]
                return dict(only)

            found = await _eventually(delivery, lambda d: d["status"] != "pending")
            assert (found["status"], found["attempts"], found["last_status"]) == (
                "failed",
                3,
                502,
            )
            assert found["last_error"] == "answered 502: no"
            assert found["next_attempt_at_us"] is None
            assert len(receiver.got()) == 3  # given up: no fourth attempt


async def test_an_endpoint_failing_for_too_long_is_disabled(
    economy_app: AppFactory, clock: Clock
) -> None:
    with Receiver() as receiver:
        receiver.fail_all("/down")
        settings = {
            **LOCAL,
            "webhook_retry_base_ms": 100,
            "webhook_max_attempts": 20,
            "webhook_disable_after_s": 3_600,
        }
        async with economy_app(**settings) as client:
            creator = await _creator(client)
            hook = await _hook(creator, receiver.url("/down"), ["gift"])
            stream, viewer = await _live_with_viewer(client, creator)
            assert (await viewer.gift(stream, "corgi")).status_code == 201

            async def listed_hook() -> dict[str, Any]:
                [listed] = (await creator.get(HOOKS)).json()
                return dict(listed)

            # Attempts at about 0, 0.1 and 0.4 s, all within the hour of the test's clock
            # however slow the machine: failing, and still enabled.
            await receiver.until(lambda got: len(got) >= 3)
            listed = await listed_hook()
            assert listed["failing_since_us"] is not None
            assert listed["disabled_at_us"] is None
            # An hour on, the next attempt (due at once by then) finds it failing for too long.
            clock.advance(1.01)
            app_services(client.app).webhooks.wake()
            listed = await _eventually(listed_hook, lambda x: x["disabled_at_us"] is not None)
            assert listed["disabled_at_us"] - listed["failing_since_us"] >= 3_600_000_000
            r = await creator.get(f"{HOOKS}/{hook['id']}/deliveries")
            assert [d["status"] for d in r.json()["deliveries"]] == ["failed"]
            assert_problem(
                await creator.post(f"{HOOKS}/{hook['id']}/test"), 409, "webhook_disabled"
            )
            seen = len(receiver.got())
            assert (await viewer.gift(stream, "corgi")).status_code == 201
            assert _rows(client) == (1, 1)  # nothing queued for a disabled endpoint
            await asyncio.sleep(0.5)  # a retry would be due at once by the clock: none comes
            assert len(receiver.got()) == seen


async def test_deliveries_are_listed_newest_first_page_by_page(economy_app: AppFactory) -> None:
    with Receiver() as receiver:
        async with economy_app(**LOCAL) as client:
            creator = await _creator(client)
            hook = await _hook(creator, receiver.url("/a"), ["gift"])
            sent = []
            for _ in range(5):
                r = await creator.post(f"{HOOKS}/{hook['id']}/test")
                sent.append(r.json()["delivery_id"])
            pages, before = [], None
            while True:
                query = {"limit": 2} if before is None else {"limit": 2, "before": before}
                r = await creator.get(f"{HOOKS}/{hook['id']}/deliveries", params=query)
                assert r.status_code == 200, r.text
                pages.append([d["id"] for d in r.json()["deliveries"]])
                before = r.json()["next_before"]
                if before is None:
                    break
            assert pages == [sent[:2:-1], sent[2:0:-1], sent[:1]]


async def test_battle_ended_is_queued_once_per_subscribed_endpoint(
    economy_app: AppFactory,
) -> None:
    with Receiver() as receiver:
        async with economy_app(**LOCAL) as client:
            red, blue, bystander = [await _creator(client) for _ in range(3)]
            red_hook = await _hook(red, receiver.url("/red"), ["battle_ended", "gift"])
            await _hook(blue, receiver.url("/blue"), ["gift"])  # not subscribed to battles
            await _hook(bystander, receiver.url("/bystander"), ["battle_ended"])
            battle = Battle(
                id=41,
                a=Side("st_red", red.id, "red"),
                b=Side("st_blue", blue.id, "blue"),
                status=BattleStatus.ENDED,
                duration_s=60,
                created_at_us=1,
                started_at_us=2,
                ends_at_us=60_000_002,
                ended_at_us=61_000_002,
                score_a=120,
                score_b=80,
                winner=Winner.A,
            )

            with _db(client).begin() as conn:  # as live.battles.finish does, with its result
                queued = enqueue_battle_ended(conn, battle)
            assert queued == 1
            with _db(client).begin() as conn:  # the same battle again: nothing new
                assert enqueue_battle_ended(conn, battle) == 0
            app_services(client.app).webhooks.wake()

            [got] = await receiver.until(lambda got: len(got) == 1)
            assert got.path == "/red"
            assert got.headers["giftwave-event"] == "battle_ended"
            assert got.event["id"] == "battle_ended:41"
            assert got.event["creator_id"] == red.id
            assert got.event["data"] == {
                "battle_id": "41",
                "winner": "a",
                "sides": [
                    {"side": "a", "stream_id": "st_red", "creator_id": red.id, "handle": "red",
                     "score": 120},
                    {"side": "b", "stream_id": "st_blue", "creator_id": blue.id, "handle": "blue",
                     "score": 80},
                ],
                "ended_at_us": 61_000_002,
            }  # fmt: skip
            r = await red.get(f"{HOOKS}/{red_hook['id']}/deliveries")
            assert [d["type"] for d in r.json()["deliveries"]] == ["battle_ended"]
            assert _rows(client) == (3, 1)


def test_the_outbox_prunes_finished_rows_and_fails_orphans(sa_engine: Engine) -> None:
    """Finished deliveries go after the retention and beyond the newest N per endpoint;
    pending ones stay; pending rows of a disabled or deleted endpoint are failed."""
    day_us = 86_400 * 1_000_000
    now = 100 * day_us
    with sa_engine.begin() as conn:
        ids = []
        for disabled in (None, now):
            ids.append(
                conn.execute(
                    insert(webhook_endpoints)
                    .values(
                        creator_id=1,
                        url="https://example.com/h",
                        secret="whsec_x",
                        events="gift",
                        created_at_us=0,
                        disabled_at_us=disabled,
                    )
                    .returning(webhook_endpoints.c.id)
                ).scalar_one()
            )
        live, disabled_id = ids
        rows = [
            # (endpoint, status, age in days)
            (live, "delivered", 30),  # past the retention: pruned
            (live, "failed", 8),  # past the retention: pruned
            (live, "pending", 30),  # pending: kept whatever its age
            (live, "delivered", 1),  # beyond the newest 2 finished: pruned
            (live, "delivered", 1),
            (live, "failed", 1),
            (disabled_id, "pending", 1),  # nothing would claim it: failed
            (999_999, "pending", 1),  # its endpoint was deleted: failed
        ]
        for n, (endpoint_id, status, age_days) in enumerate(rows):
            conn.execute(
                insert(webhook_deliveries).values(
                    endpoint_id=endpoint_id,
                    event_id=f"e{n}",
                    type="gift",
                    payload="{}",
                    status=status,
                    attempts=0,
                    next_attempt_at_us=now,
                    created_at_us=now - age_days * day_us,
                )
            )
    with sa_engine.begin() as conn:
        assert fail_undeliverable(conn) == 2
        assert prune(conn, now_us=now, endpoint_ids=[live], keep_per_endpoint=2) == 3
    with sa_engine.connect() as conn:
        left = conn.execute(
            select(webhook_deliveries.c.event_id, webhook_deliveries.c.status).order_by(
                webhook_deliveries.c.id
            )
        ).all()
    assert [tuple(r) for r in left] == [
        ("e2", "pending"),
        ("e4", "delivered"),
        ("e5", "failed"),
        ("e6", "failed"),
        ("e7", "failed"),
    ]


def _sent(sender_id: int, key: str, gift_id: str = "rose", count: int = 1) -> GiftSent:
    return GiftSent(
        send_id=f"gift:{sender_id}:{key}",
        stream_id="st_combo",
        creator_id=7,
        sender_id=sender_id,
        gift_id=gift_id,
        gift_version=1,
        count=count,
        coins=count,
        diamonds=count,
        balance_coins=0,
        created_at_us=0,
    )


def test_combos_grow_within_the_window_and_close_once(sa_engine: Engine) -> None:
    """The combo rule on the database: same sender and gift, no gap over the window."""
    s = 1_000_000
    quiet = 3 * s

    def track(sent: GiftSent, at_s: float) -> list[dict[str, Any]]:
        with sa_engine.begin() as conn:
            ended = track_gift(
                conn, sent, f"user{sent.sender_id}", at_us=int(at_s * s), quiet_us=quiet
            )
        return [msgspec.structs.asdict(e.data) for e in ended]

    def sweep(at_s: float) -> list[dict[str, Any]]:
        with sa_engine.begin() as conn:
            return [
                msgspec.structs.asdict(e.data)
                for e in close_quiet(conn, now_us=int(at_s * s), quiet_us=quiet)
            ]

    assert track(_sent(1, "a"), 0) == []
    assert track(_sent(1, "b", count=5), 2.5) == []
    assert track(_sent(1, "c"), 2.0) == []  # arrived late: still the same combo
    assert track(_sent(2, "x"), 1.0) == []  # another sender: another combo
    assert track(_sent(1, "p", gift_id="panda"), 1.0) == []  # another gift: another combo
    assert sweep(4.9) == []  # the others last gave at 1.0: over at 1.0 + 3 + 1 (grace)
    closed = sorted(sweep(5.1), key=lambda e: e["combo_id"])
    assert [(e["combo_id"], e["count"]) for e in closed] == [("gift:1:p", 1), ("gift:2:x", 1)]
    assert sweep(5.1) == []  # closed once
    # The roses were quiet for longer than the window (not swept yet: that is at 6.5 s): the
    # next rose closes their combo itself and starts another.
    [ended] = track(_sent(1, "d"), 6.0)
    assert (ended["combo_id"], ended["count"], ended["sends"]) == ("gift:1:a", 7, 3)
    assert (ended["started_at_us"], ended["last_gift_at_us"]) == (0, int(2.5 * s))
    [last] = sweep(100)
    assert (last["combo_id"], last["count"]) == ("gift:1:d", 1)
    assert sweep(100) == []


def test_a_claim_takes_at_most_its_limit_and_never_a_taken_row(sa_engine: Engine) -> None:
    with sa_engine.begin() as conn:
        endpoint_id = conn.execute(
            insert(webhook_endpoints)
            .values(
                creator_id=1,
                url="https://example.com/h",
                secret="whsec_x",
                events="gift",
                created_at_us=0,
            )
            .returning(webhook_endpoints.c.id)
        ).scalar_one()
        conn.execute(
            insert(webhook_deliveries),
            [
                {
                    "endpoint_id": endpoint_id,
                    "event_id": f"e{n}",
                    "type": "gift",
                    "payload": "{}",
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at_us": n,
                    "created_at_us": 0,
                }
                for n in range(1000)
            ],
        )
    taken: list[int] = []
    for _ in range(70):
        with sa_engine.begin() as conn:
            claims = claim_due(conn, now_us=10_000, limit=16, lease_us=1_000_000)
        assert len(claims) <= 16
        taken += [c.delivery_id for c in claims]
    assert len(taken) == len(set(taken)) == 1000
    with sa_engine.begin() as conn:  # all leased now: nothing is due until the leases end
        assert claim_due(conn, now_us=20_000, limit=16, lease_us=1_000_000) == []

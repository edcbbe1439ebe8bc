"""Battles over the REST API, in process, on SQLite and PostgreSQL: every refusal is
problem+json with a stable code and writes nothing; answering twice never starts twice; an
unanswered invitation expires; a battle ended early (or by its stream ending) is scored from
the committed gifts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
from economy_client import ADMIN, AppFactory, Person, assert_problem, economy_app, register
from sqlalchemy import func, select, update

from giftwave.api.state import app_services
from giftwave.db.tables import battles, webhook_deliveries
from giftwave.live.battle_referee import Referee
from giftwave.live.battles import SETTLE_US
from giftwave.live.events import RoomNews, plain
from giftwave.webhooks.outbox import enqueue_battle_ended

__all__ = ["economy_app"]
S = 1_000_000


def battle_count(client: httpx.AsyncClient) -> int:
    db = app_services(client.app).db
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(battles)).scalar_one())


async def creators_live(client: httpx.AsyncClient, n: int) -> list[tuple[Person, str]]:
    made = []
    for _ in range(n):
        creator = await register(client, "creator")
        made.append((creator, await creator.go_live()))
    return made


async def challenge(
    creator: Person, stream_id: str, opponent_stream_id: str, **extra: Any
) -> httpx.Response:
    body = {"stream_id": stream_id, "opponent_stream_id": opponent_stream_id, **extra}
    return await creator.post("/v1/battles", body)


async def sleep_until(at_us: int) -> None:
    await asyncio.sleep(max(0.0, at_us / S - time.time()) + 0.05)


async def until_status(person: Person, battle_id: int, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        r = await person.get(f"/v1/battles/{battle_id}")
        assert r.status_code == 200, r.text
        if r.json()["status"] == status:
            return dict(r.json())
        assert time.monotonic() < deadline, r.json()
        await asyncio.sleep(0.1)


async def test_bad_challenges_are_refused_and_write_nothing(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        (ana, st_ana), (bo, st_bo) = await creators_live(client, 2)
        viewer = await register(client)
        gone = await register(client, "creator")
        st_gone = await gone.go_live()
        assert (await gone.post(f"/v1/streams/{st_gone}/end")).status_code == 200

        assert_problem(await challenge(ana, st_ana, st_ana), 422, "cannot_battle_self")
        assert_problem(await challenge(ana, st_bo, st_ana), 403, "not_your_stream")
        assert_problem(await challenge(viewer, st_ana, st_bo), 403, "not_your_stream")
        assert_problem(await challenge(ana, st_ana, "st_nobody"), 404, "stream_not_found")
        assert_problem(await challenge(ana, st_ana, st_gone), 409, "stream_not_live")
        assert_problem(await challenge(gone, st_gone, st_ana), 409, "stream_not_live")
        short = await challenge(ana, st_ana, st_bo, duration_s=59)
        assert_problem(short, 422, "invalid_battle_duration")
        for bad in (
            {"stream_id": st_ana},
            {"stream_id": st_ana, "opponent_stream_id": st_bo, "duration_s": 0},
            {"stream_id": st_ana, "opponent_stream_id": st_bo, "duration_s": 1801},
            {"stream_id": st_ana, "opponent_stream_id": st_bo, "winner": "a"},
            {"stream_id": 12, "opponent_stream_id": st_bo},
        ):
            assert_problem(await ana.post("/v1/battles", bad), 422, "invalid_request")
        anonymous = await client.post(
            "/v1/battles", json={"stream_id": st_ana, "opponent_stream_id": st_bo}
        )
        assert_problem(anonymous, 401, "unauthorized")
        assert battle_count(client) == 0

        assert_problem(await bo.get("/v1/battles/424242"), 404, "battle_not_found")
        assert_problem(await bo.post("/v1/battles/424242/accept"), 404, "battle_not_found")
        assert_problem(await bo.get(f"/v1/streams/{st_ana}/battle"), 404, "no_battle")
        assert_problem(await bo.get("/v1/streams/st_nobody/battle"), 404, "stream_not_found")
        assert_problem(await bo.post("/v1/battles/0/accept"), 422, "invalid_request")


async def test_one_battle_per_stream_and_only_the_invited_creator_answers(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        (ana, st_ana), (bo, st_bo), (cy, st_cy) = await creators_live(client, 3)
        viewer = await register(client)
        r = await challenge(ana, st_ana, st_bo)
        assert r.status_code == 201, r.text
        invited = r.json()
        assert (invited["status"], invited["duration_s"], invited["starts_at_us"]) == (
            "pending",
            300,
            None,
        )
        assert [(s["side"], s["stream_id"], s["score"]) for s in invited["sides"]] == [
            ("a", st_ana, 0),
            ("b", st_bo, 0),
        ]
        assert invited["invitation_expires_at_us"] == invited["created_at_us"] + 60 * S
        battle_id = invited["id"]

        # While it is pending, neither stream takes part in another battle, either way round.
        for who, mine, theirs in ((cy, st_cy, st_ana), (cy, st_cy, st_bo), (ana, st_ana, st_cy)):
            body = assert_problem(await challenge(who, mine, theirs), 409, "battle_in_progress")
            assert body["battle_id"] == battle_id
        for outsider in (ana, cy, viewer):
            refused = await outsider.post(f"/v1/battles/{battle_id}/accept")
            assert_problem(refused, 403, "not_invited")
            assert_problem(
                await outsider.post(f"/v1/battles/{battle_id}/decline"), 403, "not_invited"
            )
        assert_problem(await viewer.post(f"/v1/battles/{battle_id}/end"), 403, "not_in_battle")
        assert (await cy.get(f"/v1/streams/{st_bo}/battle")).json()["id"] == battle_id
        assert battle_count(client) == 1

        # A double tap: both answers say the same start, the battle started once.
        first, second = await asyncio.gather(
            bo.post(f"/v1/battles/{battle_id}/accept"), bo.post(f"/v1/battles/{battle_id}/accept")
        )
        assert first.status_code == second.status_code == 200, (first.text, second.text)
        assert first.json() == second.json()
        started = first.json()
        assert started["status"] == "active"
        assert started["starts_at_us"] - started["created_at_us"] >= 3 * S  # the countdown
        assert started["ends_at_us"] == started["starts_at_us"] + 300 * S
        again = await bo.post(f"/v1/battles/{battle_id}/accept")
        assert (again.status_code, again.json()["starts_at_us"]) == (200, started["starts_at_us"])
        declined = await bo.post(f"/v1/battles/{battle_id}/decline")
        assert_problem(declined, 409, "battle_not_pending")
        assert_problem(await challenge(cy, st_cy, st_ana), 409, "battle_in_progress")
        assert battle_count(client) == 1

        # Declining frees both streams.
        other = await register(client, "creator")
        st_other = await other.go_live()
        r = await challenge(cy, st_cy, st_other)
        assert r.status_code == 201, r.text
        no = await other.post(f"/v1/battles/{r.json()['id']}/decline")
        assert (no.status_code, no.json()["status"]) == (200, "declined")
        assert (await other.post(f"/v1/battles/{r.json()['id']}/decline")).status_code == 200
        late = await other.post(f"/v1/battles/{r.json()['id']}/accept")
        assert_problem(late, 409, "battle_not_pending")
        r = await challenge(other, st_other, st_cy, duration_s=60)
        assert r.status_code == 201, r.text


async def test_an_unanswered_invitation_expires(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        (ana, st_ana), (bo, st_bo) = await creators_live(client, 2)
        r = await challenge(ana, st_ana, st_bo)
        battle_id = r.json()["id"]
        db = app_services(client.app).db
        with db.begin() as conn:  # a minute and a second ago
            conn.execute(
                update(battles)
                .where(battles.c.id == battle_id)
                .values(created_at_us=battles.c.created_at_us - 61 * S)
            )
        assert_problem(await bo.post(f"/v1/battles/{battle_id}/accept"), 409, "invitation_expired")
        expired = await until_status(bo, battle_id, "expired")  # the referee's sweep
        assert expired["ended_at_us"] is not None
        assert expired["starts_at_us"] is None
        assert_problem(await bo.post(f"/v1/battles/{battle_id}/accept"), 409, "invitation_expired")
        assert_problem(await bo.get(f"/v1/streams/{st_bo}/battle"), 404, "no_battle")
        r = await challenge(ana, st_ana, st_bo)  # the streams are free again
        assert r.status_code == 201, r.text


async def test_ended_early_it_is_scored_from_the_committed_gifts(economy_app: AppFactory) -> None:
    async with economy_app(battle_min_duration_s=1, webhook_allow_private_addresses=True) as client:
        (ana, st_ana), (bo, st_bo), (cy, st_cy) = await creators_live(client, 3)
        fan = await register(client)
        r = await client.post(
            f"/v1/admin/users/{fan.id}/coins",
            json={"coins": 1000, "idempotency_key": "fan"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        # Nothing listens there: the delivery is only queued and retried (no traffic leaves).
        hook = {"url": "http://127.0.0.1:9/giftwave", "events": ["battle_ended"]}
        r = await bo.post("/v1/creators/me/webhooks", hook)
        assert r.status_code == 201, r.text
        battle_id = (await challenge(ana, st_ana, st_bo)).json()["id"]
        started = (await bo.post(f"/v1/battles/{battle_id}/accept")).json()
        assert (await fan.gift(st_ana, "panda")).status_code == 201  # the countdown: no points
        await sleep_until(started["starts_at_us"])
        for _ in range(3):
            assert (await fan.gift(st_ana, "rose")).status_code == 201
        assert (await fan.gift(st_bo, "panda")).status_code == 201
        live = (await cy.get(f"/v1/battles/{battle_id}")).json()
        assert [s["score"] for s in live["sides"]] == [3, 5]

        r = await ana.post(f"/v1/battles/{battle_id}/end")
        assert r.status_code == 200, r.text
        result = r.json()
        assert (result["status"], result["winner"]) == ("ended", "b")
        assert [s["score"] for s in result["sides"]] == [3, 5]
        assert result["ends_at_us"] < started["ends_at_us"]
        assert (await fan.gift(st_ana, "corgi")).status_code == 201  # after the end
        assert (await cy.get(f"/v1/battles/{battle_id}")).json() == result
        assert (await bo.post(f"/v1/battles/{battle_id}/end")).json() == result
        # Bo's alert tool hears the result once, from the outbox row written with it.
        db = app_services(client.app).db
        with db.connect() as conn:
            rows = conn.execute(
                select(webhook_deliveries.c.type, webhook_deliveries.c.payload)
            ).all()
        assert [kind for kind, _ in rows] == ["battle_ended"]
        payload = orjson.loads(rows[0][1])
        assert str(battle_id) in orjson.dumps(payload).decode()
        assert '"winner":"b"' in orjson.dumps(payload).decode()

        # A stream that ends takes its battle with it, scored as it stands.
        battle_id = (await challenge(cy, st_cy, st_ana, duration_s=600)).json()["id"]
        started = (await ana.post(f"/v1/battles/{battle_id}/accept")).json()
        await sleep_until(started["starts_at_us"])
        assert (await fan.gift(st_cy, "rose")).status_code == 201
        assert (await cy.post(f"/v1/streams/{st_cy}/end")).status_code == 200
        result = await until_status(ana, battle_id, "ended")
        assert (result["winner"], [s["score"] for s in result["sides"]]) == ("a", [1, 0])


async def test_of_two_referees_racing_exactly_one_announces_the_result(
    economy_app: AppFactory,
) -> None:
    """Two nodes sweep the same database: the conditional UPDATE lets one of them end the
    battle; only that one publishes ``battle_ended`` (once to each room)."""
    async with economy_app(battle_min_duration_s=1) as client:
        app_referee = app_services(client.app).referee
        await app_referee.stop()  # the two below are the only ones sweeping
        (ana, st_ana), (bo, st_bo) = await creators_live(client, 2)
        battle_id = (await challenge(ana, st_ana, st_bo, duration_s=1)).json()["id"]
        started = (await bo.post(f"/v1/battles/{battle_id}/accept")).json()
        db = app_services(client.app).db
        published: list[list[tuple[str, str]]] = [[], []]

        def recorder(into: list[tuple[str, str]]) -> Any:
            async def publish(stream_id: str, news: RoomNews) -> None:
                into.append((stream_id, plain(news)["type"]))

            return publish

        nodes = [
            Referee(db, recorder(published[0]), on_result=enqueue_battle_ended),
            Referee(db, recorder(published[1]), on_result=enqueue_battle_ended),
        ]
        await sleep_until(started["ends_at_us"] + SETTLE_US)
        for _ in range(20):
            await asyncio.gather(*(node.sweep() for node in nodes))
        ended = [[p for p in node if p[1] == "battle_ended"] for node in published]
        assert sorted(len(e) for e in ended) == [0, 2], published
        assert sorted(stream for stream, _ in ended[0] + ended[1]) == sorted([st_ana, st_bo])
        assert (await ana.get(f"/v1/battles/{battle_id}")).json()["status"] == "ended"

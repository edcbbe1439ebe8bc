"""Gifter levels on SQLite and PostgreSQL: computed from the ledger off the gift path, exact for
random gift sequences, each level-up once (two followers racing on one database), announced in
the gift's room and by webhook, kept through a reversal, hidden on request; bad input refused."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
from economy_client import (
    ADMIN,
    AppFactory,
    Person,
    assert_problem,
    economy_app,
    grant,
    problem_body,
    register,
)
from sqlalchemy import Connection, Engine, event, func, select
from webhook_receiver import Receiver

from giftwave.api.state import app_services
from giftwave.db.engine import make_engine
from giftwave.db.tables import gifter_creators, gifter_levels, level_ups
from giftwave.db.urls import DatabaseUrl
from giftwave.live.events import LevelUpShown, RoomEvent
from giftwave.live.room import Room
from giftwave.social.level_follower import LevelFollower, LevelUp
from giftwave.social.level_service import Levels

__all__ = ["economy_app"]

PRICES = {"rose": 1, "panda": 5, "perfume": 20, "doughnut": 30, "hand_hearts": 100}
LOCAL = {"webhook_allow_private_addresses": True}


def levels_of(client: httpx.AsyncClient) -> Levels:
    levels: Levels = app_services(client.app).levels
    return levels


def db_of(client: httpx.AsyncClient) -> Engine:
    db: Engine = app_services(client.app).db
    return db


async def caught_up(client: httpx.AsyncClient) -> None:
    """One round of the levels loop now (the app's own runs about once a second)."""
    await levels_of(client).run()


async def level_json(client: httpx.AsyncClient, who: Person | None, user_id: int) -> Any:
    headers = {} if who is None else who.auth
    r = await client.get(f"/v1/users/{user_id}/level", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def totals_of(conn: Connection, user_id: int) -> tuple[int, int]:
    """The gifter's stored (coins, peak_coins)."""
    c = gifter_levels.c
    coins, peak = conn.execute(select(c.coins, c.peak_coins).where(c.user_id == user_id)).one()
    return int(coins), int(peak)


async def gifting_room(client: httpx.AsyncClient, coins: int) -> tuple[Person, Person, str]:
    creator = await register(client, "creator")
    viewer = await register(client)
    await grant(client, viewer, coins)
    return creator, viewer, await creator.go_live()


async def test_random_gift_sequences_give_the_curve_of_the_sum(economy_app: AppFactory) -> None:
    rng = random.Random(23)
    async with economy_app() as client:
        creators = [await register(client, "creator") for _ in range(2)]
        streams = [await c.go_live() for c in creators]
        viewers = [await register(client) for _ in range(3)]
        for viewer in viewers:
            await grant(client, viewer, 5_000)
        sent: dict[tuple[int, int], int] = {}
        for _ in range(40):
            who, where = rng.randrange(3), rng.randrange(2)
            gift = rng.choice(list(PRICES))
            count = rng.randint(1, 3)
            r = await viewers[who].gift(streams[where], gift, count)
            assert r.status_code == 201, r.text
            key = (viewers[who].id, creators[where].id)
            sent[key] = sent.get(key, 0) + PRICES[gift] * count
            if rng.random() < 0.2:
                await caught_up(client)  # chunks end anywhere in the sequence
        await caught_up(client)
        curve = levels_of(client).curve
        for viewer in viewers:
            total = sum(c for (v, _), c in sent.items() if v == viewer.id)
            body = await level_json(client, None, viewer.id)
            assert (body["coins"], body["level"]) == (total, curve.level(total))
            assert body["coins_to_next"] == curve.threshold(body["level"] + 1) - total
            mine = sorted(
                ((c, coins) for (v, c), coins in sent.items() if v == viewer.id),
                key=lambda x: (-x[1], x[0]),
            )
            assert [(s["creator_id"], s["coins"]) for s in body["top_creators"]] == mine


async def test_a_level_up_is_said_in_the_room_and_to_the_creator_once(
    economy_app: AppFactory,
) -> None:
    with Receiver() as receiver:
        async with economy_app(**LOCAL) as client:
            creator, viewer, stream = await gifting_room(client, 1_000)
            r = await creator.post(
                "/v1/creators/me/webhooks",
                {"url": receiver.url("/levels"), "events": ["gifter.level_up"]},
            )
            assert r.status_code == 201, r.text
            hub = app_services(client.app).hub
            await hub.follow(stream)
            said: list[RoomEvent] = []

            def watch(room: Room, events: list[RoomEvent]) -> None:
                if room.stream_id == stream:
                    said.extend(e for e in events if isinstance(e, LevelUpShown))

            hub.add_observer(watch)
            r = await viewer.gift(stream, "hand_hearts")  # 100 coins: level 15 (82..109 coins)
            assert r.status_code == 201, r.text
            await caught_up(client)
            await caught_up(client)  # a second round announces nothing again
            for _ in range(200):  # up to 10 s on a busy machine
                if said:
                    break
                await asyncio.sleep(0.05)
            level = levels_of(client).curve.level(100)
            handle = viewer.user["handle"]
            assert [(e.user_id, e.handle, e.level) for e in said] == [(viewer.id, handle, level)]
            app_services(client.app).webhooks.wake()
            got = await receiver.until(lambda rs: len(rs) >= 1, "/levels")
            event = got[0].event
            assert event["id"] == f"level_up:{viewer.id}:{level}"
            assert event["type"] == "gifter.level_up"
            assert event["creator_id"] == creator.id
            assert event["data"]["stream_id"] == stream
            assert (event["data"]["user_id"], event["data"]["level"]) == (viewer.id, level)
            assert levels_of(client).badges.get(viewer.id) == level  # the notice fed the cache
            r = await viewer.gift(stream, "rose")  # 101 coins: still the same level
            await caught_up(client)
            await asyncio.sleep(0.3)
            assert len(said) == 1


async def test_two_followers_racing_record_each_level_once(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app() as client:
        await levels_of(client).stop()  # this node's follower takes no part
        _creator, viewer, stream = await gifting_room(client, 2_000)
        for gift in ["rose", "panda", "perfume", "doughnut", "hand_hearts", "doughnut"] * 3:
            assert (await viewer.gift(stream, gift)).status_code == 201
        curve = levels_of(client).curve
        engines = [make_engine(db_url) for _ in range(2)]
        announced: list[list[LevelUp]] = [[], []]
        try:
            followers = [
                LevelFollower(
                    engine,
                    curve,
                    observers=(lambda _c, ups, i=i: announced[i].extend(ups),),
                    chunk_max_transfers=3,
                )
                for i, engine in enumerate(engines)
            ]
            await asyncio.gather(
                *(asyncio.to_thread(f.catch_up) for f in followers for _ in range(2))
            )
            taken = [up for f in followers for up in f.take_level_ups()]
            assert followers[0].run_once() == followers[1].run_once() == 0
        finally:
            for engine in engines:
                engine.dispose()
        total = 3 * sum(PRICES[g] for g in ["rose", "panda", "perfume", "doughnut"]) + 3 * (
            100 + 30
        )
        with db_of(client).connect() as conn:
            stored = totals_of(conn, viewer.id)
            rows = conn.execute(select(level_ups.c.level).order_by(level_ups.c.level)).scalars()
            levels_recorded = list(rows)
        assert stored == (total, total)
        # each level reached once, in the rows, the observers and the announcements alike
        observed = sorted(up.level for ups in announced for up in ups)
        assert observed == levels_recorded == sorted(up.level for up in taken)
        assert len(set(levels_recorded)) == len(levels_recorded)
        assert levels_recorded[-1] == curve.level(total)


async def test_a_gift_committed_between_the_chunks_reads_counts_once(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    """A run reads its chunk's head, then the chunk's gifts, outside the write transaction: a
    gift committed between the two reads lies past the head, so it is the next chunk's, and
    this one must not count it too (it did, under load: 972 coins for 970 sent)."""
    async with economy_app() as client:
        await levels_of(client).stop()  # only this test's follower runs
        creator, viewer, stream = await gifting_room(client, 1_000)
        assert (await viewer.gift(stream, "doughnut")).status_code == 201  # 30
        loop = asyncio.get_running_loop()
        engine = make_engine(db_url)
        sent: list[httpx.Response] = []

        def gift_between_the_reads(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if sent or "max(transfers.seq)" not in statement.lower():
                return
            gift = viewer.gift(stream, "rose", 2)  # 2 coins, committed before the next read
            sent.append(asyncio.run_coroutine_threadsafe(gift, loop).result(timeout=60))

        event.listen(engine, "after_cursor_execute", gift_between_the_reads)
        try:
            follower = LevelFollower(engine, levels_of(client).curve)
            await asyncio.to_thread(follower.catch_up)
            assert [r.status_code for r in sent] == [201]
            await asyncio.to_thread(follower.catch_up)  # the next chunk: the rose
        finally:
            event.remove(engine, "after_cursor_execute", gift_between_the_reads)
            engine.dispose()
        with db_of(client).connect() as conn:
            stored = totals_of(conn, viewer.id)
            given = conn.execute(
                select(gifter_creators.c.coins).where(
                    gifter_creators.c.user_id == viewer.id,
                    gifter_creators.c.creator_id == creator.id,
                )
            ).scalar_one()
        assert (stored, given) == ((32, 32), 32)


async def test_a_run_whose_chunk_another_passed_after_its_reads_writes_nothing(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    """A run reads the gifters' totals and tallies its chunk before its write transaction:
    if another run passes the chunk in between, the first finds the position moved and
    writes nothing (else every gift of the chunk would count twice)."""
    async with economy_app() as client:
        await levels_of(client).stop()  # only this test's followers run
        _creator, viewer, stream = await gifting_room(client, 1_000)
        for gift in ["doughnut", "perfume", "hand_hearts"]:  # 150 coins
            assert (await viewer.gift(stream, gift)).status_code == 201
        curve = levels_of(client).curve
        late_engine, other_engine = make_engine(db_url), make_engine(db_url)
        other = LevelFollower(other_engine, curve)
        passed: list[int] = []

        def other_passes_after_the_totals(
            _conn: Any, _cursor: Any, statement: str, *_: Any
        ) -> None:
            if not passed and "from gifter_levels" in statement.lower():
                passed.append(other.catch_up())

        event.listen(late_engine, "after_cursor_execute", other_passes_after_the_totals)
        try:
            late = LevelFollower(late_engine, curve)
            assert await asyncio.to_thread(late.run_once) == 0
            assert [n > 0 for n in passed] == [True]
            assert late.take_level_ups() == []
            announced = other.take_level_ups()
        finally:
            event.remove(late_engine, "after_cursor_execute", other_passes_after_the_totals)
            late_engine.dispose()
            other_engine.dispose()
        with db_of(client).connect() as conn:
            stored = totals_of(conn, viewer.id)
            levels_recorded = list(conn.execute(select(level_ups.c.level)).scalars())
        assert stored == (150, 150)
        assert sorted(levels_recorded) == sorted(up.level for up in announced)
        assert max(levels_recorded) == curve.level(150)


async def test_a_reversal_lowers_the_coins_and_keeps_the_level(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        creator, viewer, stream = await gifting_room(client, 1_000)
        kept = await viewer.gift(stream, "doughnut")  # 30
        gone = await viewer.gift(stream, "hand_hearts")  # 100, reversed by the operator
        assert (kept.status_code, gone.status_code) == (201, 201)
        await caught_up(client)
        before = await level_json(client, None, viewer.id)
        r = await client.post(
            f"/v1/admin/gift-sends/{gone.json()['send_id']}/reverse", headers=ADMIN
        )
        assert r.status_code == 200, r.text
        await caught_up(client)
        after = await level_json(client, None, viewer.id)
        curve = levels_of(client).curve
        assert before["coins"] == 130
        assert after["coins"] == 30
        assert after["level"] == before["level"] == curve.level(130)
        assert after["coins_to_next"] == curve.threshold(after["level"] + 1) - 30
        assert after["top_creators"] == [
            {"creator_id": creator.id, "handle": creator.user["handle"], "coins": 30}
        ]
        with db_of(client).connect() as conn:
            rows = conn.execute(select(func.count()).select_from(gifter_creators)).scalar_one()
        assert rows == 1


async def test_a_hidden_level_is_shown_to_nobody_else(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        creator, viewer, stream = await gifting_room(client, 1_000)
        other = await register(client)
        assert (await viewer.gift(stream, "doughnut")).status_code == 201
        await caught_up(client)
        badges = levels_of(client).badges
        await badges.warm([viewer.id])
        assert badges.get(viewer.id) == levels_of(client).curve.level(30)

        r = await client.patch("/v1/me/level", json={"hidden": True}, headers=viewer.auth)
        assert r.status_code == 200, r.text
        assert (r.json()["hidden"], r.json()["coins"]) == (True, 30)
        for who in (None, other, creator):
            headers = {} if who is None else who.auth
            answer = await client.get(f"/v1/users/{viewer.id}/level", headers=headers)
            assert_problem(answer, 403, "level_hidden")
            body = problem_body(answer)  # the problem's own fields only: nothing of the level
            assert set(body) == {"type", "title", "status", "detail", "code"}, body
        mine = await level_json(client, viewer, viewer.id)
        assert (mine["hidden"], mine["coins"]) == (True, 30)
        assert badges.get(viewer.id) is None  # no badge beside the handle in rooms
        # a later gift counts, and its level-up is announced to nobody
        assert (await viewer.gift(stream, "hand_hearts")).status_code == 201
        await caught_up(client)
        assert levels_of(client).follower.take_level_ups() == []
        assert (await level_json(client, viewer, viewer.id))["coins"] == 130

        r = await client.patch("/v1/me/level", json={"hidden": False}, headers=viewer.auth)
        assert r.status_code == 200, r.text
        assert (await level_json(client, other, viewer.id))["coins"] == 130
        assert badges.get(viewer.id) == levels_of(client).curve.level(130)


async def test_bad_input_is_refused_and_changes_nothing(economy_app: AppFactory) -> None:
    async with economy_app(cookie_secure=False) as client:
        viewer = await register(client)
        client.cookies.clear()  # the sign-up's session cookie: the bearer token acts here
        curve = (await client.get("/v1/levels")).json()["levels"]
        assert len(curve) == 50
        assert curve[0] == {"level": 1, "coins": 1}
        assert curve[-1] == {"level": 50, "coins": 5_000_000}
        for bad in ("0", "-1", "abc", str(2**63), "1.5"):
            r = await client.get(f"/v1/users/{bad}/level")
            assert r.status_code == 422, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
        assert_problem(await client.get("/v1/users/987654321/level"), 404, "user_not_found")
        assert_problem(
            await client.patch("/v1/me/level", json={"hidden": True}), 401, "unauthorized"
        )
        for body in ({}, {"hidden": "yes"}, {"hidden": True, "coins": 10**9}, [True]):
            r = await client.patch("/v1/me/level", json=body, headers=viewer.auth)
            assert r.status_code == 422, r.text
        r = await client.patch(
            "/v1/me/level",
            content=b'{"hidden": true, "x": "' + b"a" * 2_000_000 + b'"}',
            headers={**viewer.auth, "content-type": "application/json"},
        )
        assert r.status_code in (413, 422), r.text
        with db_of(client).connect() as conn:
            assert conn.execute(select(func.count()).select_from(gifter_levels)).scalar_one() == 0
        # a cookie session must send its CSRF token
        login = await client.post(
            "/v1/auth/login",
            json={"login": viewer.user["handle"], "password": "correct horse battery"},
        )
        assert login.status_code == 200, login.text
        r = await client.patch("/v1/me/level", json={"hidden": True})
        assert_problem(r, 403, "csrf_failed")
        client.cookies.clear()
        # hiding and showing again is limited per person
        codes = [
            (
                await client.patch("/v1/me/level", json={"hidden": i % 2 == 0}, headers=viewer.auth)
            ).status_code
            for i in range(12)
        ]
        assert codes[:10] == [200] * 10
        assert codes[-1] == 429

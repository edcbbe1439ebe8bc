"""Share links on both databases: one link per sharer, target and channel; opening it records a
hashed visit and lands on the stream; sign-ups, joins and gifts that follow are credited to the
first and last link (each gift once, nothing for a sharer's own); bad input changes nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import httpx
from economy_client import (
    ADMIN,
    AppFactory,
    Person,
    assert_problem,
    economy_app,
    grant,
    register,
)
from sqlalchemy import func, select, update

from giftwave.api.state import app_services
from giftwave.clock import now_us
from giftwave.db.engine import make_engine
from giftwave.db.tables import (
    server_secrets,
    share_attributions,
    share_links,
    share_visits,
    transfers,
)
from giftwave.db.urls import DatabaseUrl
from giftwave.sharing.attribution import Event
from giftwave.sharing.gift_credits import GiftCredits
from giftwave.sharing.service import DAY_US, SHARES_BURST, Sharing
from giftwave.sharing.visit_writer import Visit, VisitWriter
from giftwave.sharing.visitors import SALT_PREFIX, ShareCookie, daily_salt
from giftwave.web.pages.share_link import redirect_in_memory

__all__ = ["economy_app"]

UA = "Mozilla/5.0 (X11; Linux x86_64) SharingTest/1.0"


@asynccontextmanager
async def browser(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """Another visitor of the same app, with cookies of its own."""
    transport = httpx.ASGITransport(app=client.app, client=("203.0.113.7", 4321))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(
        transport=transport, base_url="http://giftwave.test", headers={"User-Agent": UA}
    ) as other:
        yield other


async def touched_viewer(client: httpx.AsyncClient) -> tuple[Person, Person, str]:
    """A sharer, a viewer with 500 coins who opened the sharer's link to a live stream (a
    touch), and the stream."""
    creator = await register(client, "creator")
    sharer, viewer = await register(client), await register(client)
    stream = await creator.go_live()
    r = await sharer.post(
        "/v1/shares", {"target_kind": "stream", "target_id": stream, "channel": "copy"}
    )
    assert (await viewer.get(f"/s/{r.json()['code']}")).status_code == 302  # a touch
    await grant(client, viewer, 500)
    return sharer, viewer, stream


async def reach_after_visits(sharer: Person, visits: int) -> dict[str, Any]:
    """The sharer's reach once ``visits`` visits are written: anonymous ones are batched, and
    committed within the writer's linger (50 ms)."""
    for _ in range(40):
        reach: dict[str, Any] = (await sharer.get("/v1/me/reach")).json()
        if reach["visits"] >= visits:
            return reach
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {visits} visits after 2 s: {reach}")


def credits_written(client: httpx.AsyncClient) -> int:
    with sharing_of(client).db.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(share_attributions.c.event == "gift")
            ).scalar_one()
        )


async def gifts_credited(client: httpx.AsyncClient, credits: int) -> None:
    """Wait until ``credits`` gift credits are written: each node's credit thread runs about
    once a second (sharing/gift_credits.py)."""
    for _ in range(100):
        written = credits_written(client)
        if written >= credits:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{written} of {credits} gift credits after 5 s")


def sharing_of(client: httpx.AsyncClient) -> Sharing:
    sharing: Sharing = app_services(client.app).sharing
    return sharing


async def test_a_share_brings_a_visitor_who_signs_up_and_gifts(economy_app: AppFactory) -> None:
    async with economy_app(cookie_secure=False) as client:
        creator = await register(client, "creator")
        sharer = await register(client)
        stream = await creator.go_live()

        body = {"target_kind": "stream", "target_id": stream, "channel": "copy"}
        made = await sharer.post("/v1/shares", body)
        assert made.status_code == 201, made.text
        link = made.json()
        again = await sharer.post("/v1/shares", body)
        assert again.status_code == 200
        assert again.json()["code"] == link["code"]  # idempotent per user, target and channel
        whatsapp = await sharer.post("/v1/shares", body | {"channel": "whatsapp"})
        assert whatsapp.json()["code"] != link["code"]
        assert link["url"] == f"http://giftwave.test/s/{link['code']}"
        qr = await client.get(f"/v1/shares/{link['code']}/qr.svg")
        assert qr.status_code == 200
        assert qr.headers["content-type"] == "image/svg+xml"
        assert qr.text.lstrip().startswith("<svg")

        async with browser(client) as visitor:
            opened = await visitor.get(f"/s/{link['code']}")
            assert opened.status_code == 302
            assert opened.headers["location"] == f"/live/{stream}?via={link['code']}"
            assert "gw_share" in visitor.cookies
            page = await visitor.get(opened.headers["location"], headers={"Accept": "text/html"})
            assert f"@<bdi>{sharer.user['handle']}</bdi>" in page.text  # "Shared by @…"
            assert "2 shares" in page.text
            assert "1 person shared this in the last hour" in page.text

            r = await visitor.post(
                "/v1/auth/register",
                json={
                    "handle": f"came{sharer.id}",
                    "email": f"came{sharer.id}@example.org",
                    "password": "correct horse battery",
                    "birth_date": "1990-01-01",
                    "country": "US",
                },
            )
            assert r.status_code == 201, r.text
            newcomer = Person(visitor, r.json()["user"], r.json()["token"])
            await grant(client, newcomer, 1000)
            sent = await newcomer.gift(stream, "panda", 2, key="first-gift")  # 10 coins
            assert sent.status_code == 201, sent.text
            retried = await newcomer.gift(stream, "panda", 2, key="first-gift")  # a retry
            assert retried.json()["send_id"] == sent.json()["send_id"]
            assert (await newcomer.gift(stream, "rose", 5)).status_code == 201  # 5 coins
            credited = await asyncio.to_thread(
                sharing_of(client).note, newcomer.id, None, Event.JOIN, stream, stream_id=stream
            )
            assert credited
            assert (await newcomer.get("/v1/me/reach")).json()["visits"] == 0

        # The sharer opening their own link (their session cookie): no visit, no credit.
        own = await sharer.get(f"/s/{link['code']}")
        assert own.status_code == 302
        assert "gw_share" not in own.cookies

        await gifts_credited(client, 4)  # two gifts, each to the first and the last touch
        reach = await reach_after_visits(sharer, 1)
        assert (reach["visits"], reach["unique_visitors"], reach["links"]) == (1, 1, 2)
        for touch in ("first_touch", "last_touch"):
            assert reach[touch] == {"signups": 1, "joins": 1, "gifters": 1, "coins": 15}
        assert reach["badges"] == []
        assert reach["next_badge"] == {"id": "spark", "threshold": 10}

        sharers = (await client.get(f"/v1/streams/{stream}/sharers")).json()
        assert (sharers["shares"], sharers["sharers_last_hour"]) == (2, 1)
        assert [
            (s["rank"], s["user_id"], s["visits"], s["signups"], s["coins"]) for s in sharers["top"]
        ] == [(1, sharer.id, 1, 1, 15)]

        # No address is kept: the visit holds a 64-hex hash, not 203.0.113.7.
        with sharing_of(client).db.connect() as conn:
            hashes = conn.execute(select(share_visits.c.visitor_hash)).scalars().all()
            gifts = conn.execute(
                select(func.count()).where(share_attributions.c.event == "gift")
            ).scalar_one()
        assert len(hashes) == 1
        assert len(hashes[0]) == 64
        assert "203.0.113.7" not in hashes[0]
        assert gifts == 4  # two gifts, each credited to the first and the last touch once


async def _in_memory(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> list[Any]:
    """What the fast lane sends for a request (empty: it declined, the route answers)."""
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": headers,
        "client": ("198.51.100.9", 5555),
    }
    answered = await redirect_in_memory(app, scope, send)
    assert answered == bool(sent)
    return sent


async def test_the_fast_lane_answers_as_the_route_does(economy_app: AppFactory) -> None:
    """An anonymous opening of a link in memory is answered before the framework, with the
    route's very headers; everything else is declined untouched and left to the route."""
    async with economy_app(cookie_secure=True) as client:
        app = client.app  # type: ignore[attr-defined]
        creator = await register(client, "creator")
        sharer = await register(client)
        stream = await creator.go_live()
        r = await sharer.post(
            "/v1/shares", {"target_kind": "stream", "target_id": stream, "channel": "copy"}
        )
        code = r.json()["code"]
        sharing_of(client)._links.clear()  # as a process that has not seen the link yet
        ua = [(b"user-agent", b"LaneTest/1.0")]
        assert await _in_memory(app, f"/s/{code}", ua) == []  # not in memory: the route

        async with browser(client) as visitor:
            by_route = await visitor.get(f"/s/{code}")  # reads the link and the day's keys
        lane = await _in_memory(app, f"/s/{code}", ua)
        assert [m["type"] for m in lane] == ["http.response.start", "http.response.body"]
        assert (lane[0]["status"], lane[1]["body"]) == (by_route.status_code, b"") == (302, b"")
        got = {k.decode(): v.decode() for k, v in lane[0]["headers"]}
        assert got["location"] == by_route.headers["location"] == f"/live/{stream}?via={code}"
        assert got["cache-control"] == by_route.headers["cache-control"] == "no-store"
        assert got["content-length"] == by_route.headers["content-length"] == "0"

        def attributes(set_cookie: str) -> list[str]:
            return [part.strip() for part in set_cookie.split(";")[1:]]

        assert attributes(got["set-cookie"]) == attributes(by_route.headers["set-cookie"])
        assert "Secure" in attributes(got["set-cookie"])
        value = got["set-cookie"].split(";")[0].removeprefix("gw_share=")
        cookie = ShareCookie.decode(sharing_of(client)._cookie_secret or b"", value)
        assert cookie is not None
        assert (cookie.first_code, cookie.last_code) == (code, code)
        await reach_after_visits(sharer, 2)  # the route's visit and the lane's

        # Declined, having sent nothing: a visitor who may be logged in, an unknown code, a
        # path that is not a code, another method, a full visit queue.
        session = [(b"cookie", b"gw_session=whoever")]
        assert await _in_memory(app, f"/s/{code}", session) == []
        assert await _in_memory(app, "/s/AAAAAAAA", ua) == []
        assert await _in_memory(app, f"/s/{code}/x", ua) == []
        sent: list[Any] = []
        head = {"type": "http", "method": "HEAD", "path": f"/s/{code}", "headers": ua}
        assert not await redirect_in_memory(app, head, sent.append)  # type: ignore[arg-type]
        sharing_of(client).record = lambda link, visit: False  # type: ignore[method-assign]
        assert await _in_memory(app, f"/s/{code}", ua) == []


async def test_a_reversed_gift_no_longer_counts_for_its_sharer(economy_app: AppFactory) -> None:
    async with economy_app(cookie_secure=False) as client:
        sharer, viewer, stream = await touched_viewer(client)
        kept = await viewer.gift(stream, "doughnut")  # 30 coins
        gone = await viewer.gift(stream, "panda", 2)  # 10 coins, reversed by a moderator
        assert (kept.status_code, gone.status_code) == (201, 201)
        r = await client.post(
            f"/v1/admin/gift-sends/{gone.json()['send_id']}/reverse", headers=ADMIN
        )
        assert r.status_code == 200, r.text
        await gifts_credited(client, 4)  # both gifts, to the first and the last touch
        reach = (await sharer.get("/v1/me/reach")).json()
        assert reach["first_touch"] == reach["last_touch"]
        assert (reach["last_touch"]["gifters"], reach["last_touch"]["coins"]) == (1, 30)
        top = (await client.get(f"/v1/streams/{stream}/sharers")).json()["top"]
        assert [(s["user_id"], s["gifters"], s["coins"]) for s in top] == [(sharer.id, 1, 30)]


async def test_first_and_last_touch_and_the_window(economy_app: AppFactory) -> None:
    async with economy_app(cookie_secure=False) as client:
        creator = await register(client, "creator")
        first, last = await register(client), await register(client)
        viewer = await register(client)
        stream = await creator.go_live()
        codes = []
        for sharer in (first, last):
            r = await sharer.post(
                "/v1/shares", {"target_kind": "stream", "target_id": stream, "channel": "x"}
            )
            codes.append(r.json()["code"])
        # A logged-in viewer opens both links: touches recorded on the spot.
        for code in codes:
            assert (await viewer.get(f"/s/{code}")).status_code == 302
        await grant(client, viewer, 500)
        assert (await viewer.gift(stream, "doughnut")).status_code == 201  # 30 coins
        await gifts_credited(client, 2)
        by_first = (await first.get("/v1/me/reach")).json()
        by_last = (await last.get("/v1/me/reach")).json()
        assert by_first["first_touch"]["coins"] == 30
        assert by_first["last_touch"]["coins"] == 0
        assert by_last["first_touch"]["coins"] == 0
        assert by_last["last_touch"]["coins"] == 30

        # Past the window, nothing is credited any more.
        sharing = sharing_of(client)
        late = now_us() + sharing.window_us + 1_000_000
        assert not sharing.note(viewer.id, None, Event.GIFT, "late-send", coins=7, at_us=late)
        assert (await first.get("/v1/me/reach")).json()["first_touch"]["coins"] == 30


async def test_bad_input_is_refused_and_writes_nothing(economy_app: AppFactory) -> None:
    async with economy_app(cookie_secure=False) as client:
        creator = await register(client, "creator")
        sharer = await register(client)
        stream = await creator.go_live()
        good = {"target_kind": "stream", "target_id": stream, "channel": "copy"}
        async with browser(client) as anonymous:
            assert_problem(await anonymous.post("/v1/shares", json=good), 401, "unauthorized")
        assert_problem(
            await sharer.post("/v1/shares", good | {"channel": "pigeon"}), 422, "invalid_channel"
        )
        assert_problem(
            await sharer.post("/v1/shares", good | {"target_kind": "song"}),
            422,
            "invalid_target_kind",
        )
        assert_problem(
            await sharer.post("/v1/shares", good | {"target_kind": "clip", "target_id": "c1"}),
            404,
            "clip_not_found",
        )
        assert_problem(
            await sharer.post("/v1/shares", good | {"target_id": "st_nope"}),
            404,
            "stream_not_found",
        )
        assert_problem(
            await sharer.post("/v1/shares", good | {"target_kind": "profile", "target_id": "9999"}),
            404,
            "user_not_found",
        )
        assert_problem(
            await sharer.post("/v1/shares", good | {"target_id": "x" * 33}), 422, "invalid_request"
        )
        assert_problem(await client.get("/v1/shares/zzzzzzzz"), 404, "share_not_found")
        assert_problem(await client.get("/v1/streams/st_nope/sharers"), 404, "stream_not_found")
        with sharing_of(client).db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(share_links)).scalar_one() == 0

        # Unknown and expired codes: a friendly page in the visitor's language.
        spanish = {"Accept": "text/html", "Accept-Language": "es"}
        for code in ("zzzzzzzz", "short", "x" * 300):
            missing = await client.get(f"/s/{code}", headers=spanish)
            assert missing.status_code == 404
            assert 'lang="es"' in missing.text
        profile = await sharer.post(
            "/v1/shares", good | {"target_kind": "profile", "target_id": str(creator.id)}
        )
        assert profile.status_code == 201
        opened = await client.get(f"/s/{profile.json()['code']}")
        # A profile's link lands on the person's profile page (their stream is linked there).
        landing = f"/@{creator.user['handle']}?via={profile.json()['code']}"
        assert opened.headers["location"] == landing
        sharing = sharing_of(client)
        with sharing.db.begin() as conn:
            conn.execute(update(share_links).values(last_shared_at_us=now_us() - 400 * DAY_US))
        sharing._links.clear()
        expired = await client.get(f"/s/{profile.json()['code']}", headers=spanish)
        assert expired.status_code == 404
        assert "gw_share" not in expired.cookies

        # A flood of share links: the burst, then 429 with Retry-After; no half-made link.
        other = await register(client)
        for i in range(SHARES_BURST):
            channel = ("copy", "x", "qr", "email")[i % 4]
            assert (await other.post("/v1/shares", good | {"channel": channel})).status_code in (
                200,
                201,
            )
        flooded = await other.post("/v1/shares", good | {"channel": "telegram"})
        problem = assert_problem(flooded, 429, "share_rate_limited")
        assert int(flooded.headers["Retry-After"]) >= 1, problem
        with sharing.db.connect() as conn:
            channels = (
                conn.execute(
                    select(share_links.c.channel).where(share_links.c.sharer_id == other.id)
                )
                .scalars()
                .all()
            )
        assert sorted(channels) == ["copy", "email", "qr", "x"]


async def test_a_forged_cookie_credits_nobody(economy_app: AppFactory) -> None:
    async with economy_app(cookie_secure=False) as client:
        creator = await register(client, "creator")
        sharer = await register(client)
        stream = await creator.go_live()
        code = (
            await sharer.post(
                "/v1/shares", {"target_kind": "stream", "target_id": stream, "channel": "copy"}
            )
        ).json()["code"]
        at_s = now_us() // 1_000_000
        forged = ShareCookie(code, at_s, code, at_s).encode(b"not the server's secret")
        async with browser(client) as visitor:
            visitor.cookies.set("gw_share", forged)
            r = await visitor.post(
                "/v1/auth/register",
                json={
                    "handle": "forger",
                    "email": "forger@example.org",
                    "password": "correct horse battery",
                    "birth_date": "1990-01-01",
                    "country": "US",
                },
            )
            assert r.status_code == 201
        reach = (await sharer.get("/v1/me/reach")).json()
        assert reach["first_touch"]["signups"] == 0
        assert reach["visits"] == 0


def test_the_visitor_salt_is_shared_by_nodes_and_rotates_daily(sa_engine) -> None:  # type: ignore[no-untyped-def]
    at = now_us()
    with sa_engine.begin() as conn:
        monday = daily_salt(conn, date(2030, 1, 7), at)
    with sa_engine.begin() as conn:  # another node, the same day: the same salt
        assert daily_salt(conn, date(2030, 1, 7), at) == monday
    with sa_engine.begin() as conn:
        tuesday = daily_salt(conn, date(2030, 1, 8), at)
        names = conn.execute(select(server_secrets.c.name)).scalars().all()
    assert tuesday != monday
    assert len(tuesday) == 32
    assert names == [SALT_PREFIX + "2030-01-08"]  # Monday's salt is gone for good


def test_the_visit_queue_is_bounded_and_written_on_stop(sa_engine) -> None:  # type: ignore[no-untyped-def]
    writer = VisitWriter(sa_engine, max_pending=2, batch_max=10, linger_s=0.01)
    visits = [Visit(7, f"{i:064x}", None, now_us()) for i in range(3)]
    assert writer.offer(visits[0])
    assert writer.offer(visits[1])
    assert not writer.offer(visits[2])  # full: the caller writes this one itself
    writer.start()
    writer.stop()
    with sa_engine.connect() as conn:
        written = conn.execute(select(share_visits.c.visitor_hash)).scalars().all()
    assert sorted(written) == [visits[0].visitor_hash, visits[1].visitor_hash]


def test_the_visit_writer_commits_a_full_batch_at_once_and_a_lone_visit_after_linger(
    sa_engine,
) -> None:  # type: ignore[no-untyped-def]
    def written() -> int:
        with sa_engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(share_visits)).scalar_one())

    def wait_for(count: int, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while written() < count:
            assert time.monotonic() < deadline, f"{written()} of {count} visits written"
            time.sleep(0.01)

    full = VisitWriter(sa_engine, batch_max=3, linger_s=60.0)  # only a full batch is written
    full.start()
    try:
        for i in range(3):
            assert full.offer(Visit(7, f"{i:064x}", None, now_us()))
        wait_for(3, within_s=5.0)
        assert full.offer(Visit(7, f"{3:064x}", None, now_us()))  # a lone visit waits...
        time.sleep(0.2)
        assert written() == 3
    finally:
        full.stop()  # ...and is written on stop
    assert written() == 4

    lone = VisitWriter(sa_engine, batch_max=500, linger_s=0.05)
    lone.start()
    try:
        assert lone.offer(Visit(7, f"{4:064x}", None, now_us()))
        wait_for(5, within_s=2.0)  # written once its linger has passed
    finally:
        lone.stop()


async def test_gifts_committed_before_a_crash_are_credited_once_by_the_next_run(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    """The node that took the gifts credits nothing more (as if it crashed right after they
    committed); another node's run credits them, once, however often and at once it runs."""
    async with economy_app(cookie_secure=False) as client:
        sharer, viewer, stream = await touched_viewer(client)
        sharing_of(client).gift_credit_thread.stop()
        for gift in ("doughnut", "rose"):  # 30 + 1 coins
            assert (await viewer.gift(stream, gift)).status_code == 201
        assert credits_written(client) == 0

        other_db = make_engine(db_url)
        try:
            other = GiftCredits(other_db, sharing_of(client).window_us, chunk_max_transfers=3)
            passed = await asyncio.gather(*(asyncio.to_thread(other.catch_up) for _ in range(2)))
            with other_db.connect() as conn:
                transfers_now = conn.execute(
                    select(func.count()).select_from(transfers)
                ).scalar_one()
            assert sum(passed) == transfers_now == other.position()
            assert other.run_once() == 0
        finally:
            other_db.dispose()
        assert credits_written(client) == 4  # each gift to the first and the last touch
        reach = (await sharer.get("/v1/me/reach")).json()
        assert (reach["first_touch"]["coins"], reach["last_touch"]["coins"]) == (31, 31)

"""Thanks (docs/community.md, "Thanks") through the JSON API, in process, on SQLite and
PostgreSQL: an ended stream's top supporters from its committed gifts, one thank-you per
stream (a retry answers the same, another is refused), only to its supporters, and every bad
input with its stable code; the recipient's profile lists it (behind the level's privacy);
the creator's next room shows it in its snapshot; a moderator takes it down."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from economy_client import ADMIN, AppFactory, Person, assert_problem, economy_app, register
from sqlalchemy import func, select
from webhook_receiver import Receiver

from giftwave.api.state import app_services
from giftwave.db.tables import webhook_deliveries
from giftwave.live.events import plain
from giftwave.live.thanks import SUPPORTERS_MAX

__all__ = ["economy_app"]


async def _coins(client: httpx.AsyncClient, *people: Person) -> None:
    for p in people:
        r = await client.post(
            f"/v1/admin/users/{p.id}/coins",
            json={"coins": 50_000, "idempotency_key": f"thanks-{p.id}"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text


async def _end(person: Person, stream: str) -> None:
    r = await person.post(f"/v1/streams/{stream}/end")
    assert r.status_code == 200, r.text


async def _thank(person: Person, stream: str, **body: Any) -> httpx.Response:
    return await person.post(f"/v1/streams/{stream}/thanks", {"message": "thank you!", **body})


async def _evening(
    client: httpx.AsyncClient,
) -> tuple[Person, str, list[Person], Person]:
    """A creator's ended stream where ana (30 coins), bo (10, first) and cy (10, later) gave,
    and a viewer who gave elsewhere."""
    creator = await register(client, "creator")
    ana, bo, cy, dee = [await register(client) for _ in range(4)]
    await _coins(client, ana, bo, cy, dee)
    stream = await creator.go_live("Friday jazz")
    assert (await bo.gift(stream, "panda", 2)).status_code == 201  # 10 coins
    assert (await cy.gift(stream, "rose", 10)).status_code == 201  # 10 coins, later
    assert (await ana.gift(stream, "doughnut")).status_code == 201  # 30 coins
    other = await register(client, "creator")
    assert (await dee.gift(await other.go_live(), "rose")).status_code == 201
    await _end(creator, stream)
    return creator, stream, [ana, bo, cy], dee


async def test_supporters_then_thanks_once(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        creator, stream, (ana, bo, cy), dee = await _evening(client)
        r = await creator.get(f"/v1/streams/{stream}/supporters")
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["title"], body["thanks"]) == ("Friday jazz", None)
        assert [(s["rank"], s["user_id"], s["coins"]) for s in body["supporters"]] == [
            (1, ana.id, 30),
            (2, bo.id, 10),
            (3, cy.id, 10),
        ]

        r = await _thank(
            creator, stream, message="  You made my night ", recipient_ids=[cy.id, ana.id]
        )
        assert r.status_code == 201, r.text
        sent = r.json()
        assert sent["message"] == "You made my night"
        assert [p["user_id"] for p in sent["recipients"]] == [ana.id, cy.id]  # by rank
        assert (sent["to_all"], sent["hidden"]) == (False, False)
        # A retry answers the same; another thank-you for the stream is refused.
        again = await _thank(
            creator, stream, message="You made my night", recipient_ids=[ana.id, cy.id]
        )
        assert again.status_code == 200, again.text
        assert again.json() == sent
        assert_problem(
            await _thank(creator, stream, message="other words", recipient_ids=[ana.id, cy.id]),
            409,
            "thanks_already_sent",
        )
        assert_problem(
            await _thank(creator, stream, message="You made my night"), 409, "thanks_already_sent"
        )
        r = await creator.get(f"/v1/streams/{stream}/supporters")
        assert r.json()["thanks"] == sent

        # The recipients' profiles show it; bo's does not; a hidden level hides it from others.
        page = (await client.get(f"/@{ana.user['handle']}")).text
        assert "You made my night" in page
        assert "Friday jazz" in page
        assert "You made my night" not in (await client.get(f"/@{bo.user['handle']}")).text
        r = await client.patch("/v1/me/level", json={"hidden": True}, headers=cy.auth)
        assert r.status_code == 200, r.text
        assert "You made my night" not in (await client.get(f"/@{cy.user['handle']}")).text
        own = await _page(client, f"/@{cy.user['handle']}", cy)
        assert "You made my night" in own.text
        assert dee  # gave elsewhere: never a recipient


async def test_next_room_shows_it_sent_before_or_during_the_next_stream(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        creator, stream, (ana, bo, cy), _ = await _evening(client)
        # Sent before the next stream: its room reads it from the database.
        r = await _thank(creator, stream)
        assert r.status_code == 201, r.text
        assert [p["user_id"] for p in r.json()["recipients"]] == [ana.id, bo.id, cy.id]
        assert r.json()["to_all"] is True
        assert (await _thank(creator, stream)).status_code == 200
        following = await creator.go_live("Saturday jazz")
        shown = {
            "stream_id": stream,
            "title": "Friday jazz",
            "text": "thank you!",
            "recipients": [{"user_id": p.id, "handle": p.user["handle"]} for p in (ana, bo, cy)],
            "at_us": r.json()["created_at_us"],
        }
        assert (await _snapshot(client, following))["thanks"] == shown
        # Taken down by the creator: gone from the profile and from the room (its news).
        r = await client.delete(f"/v1/streams/{stream}/thanks", headers=creator.auth)
        assert r.status_code == 204, r.text
        r = await client.delete(f"/v1/streams/{stream}/thanks", headers=creator.auth)
        assert r.status_code == 204, r.text
        assert "thank you!" not in (await client.get(f"/@{ana.user['handle']}")).text
        assert (await creator.get(f"/v1/streams/{stream}/supporters")).json()["thanks"]["hidden"]
        assert "thanks" not in await _snapshot(client, following)
        await _end(creator, following)

        # Sent while the next stream is live: its room is told at once (thanks_shown).
        r = await bo.gift(following, "rose", 10)
        assert r.status_code == 409  # ended: no gifts, no supporters
        third = await creator.go_live("Sunday jazz")
        assert "thanks" not in await _snapshot(client, third)  # only the stream just before
        assert (await bo.gift(third, "rose", 3)).status_code == 201
        await _end(creator, third)
        fourth = await creator.go_live("Monday jazz")
        hub = app_services(client.app).hub  # type: ignore[attr-defined]
        await hub.follow(fourth)
        r = await _thank(creator, third, message="bo, you legend")
        assert r.status_code == 201, r.text
        snap = await _snapshot(client, fourth)
        assert (snap["thanks"]["stream_id"], snap["thanks"]["text"]) == (third, "bo, you legend")


async def _page(client: httpx.AsyncClient, path: str, who: Person) -> httpx.Response:
    """A page as ``who``'s browser asks for it (pages read the session cookie, no bearer)."""
    transport = httpx.ASGITransport(app=client.app, raise_app_exceptions=False)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://giftwave.test") as browser:
        browser.cookies.set("gw_session", who.auth["Authorization"].split()[1])
        return await browser.get(path, headers={"Accept": "text/html"})


async def _snapshot(client: httpx.AsyncClient, stream: str) -> dict[str, Any]:
    """The room's snapshot as this node's hub has it (a socket's first frame)."""
    hub = app_services(client.app).hub  # type: ignore[attr-defined]
    await hub.follow(stream)
    room = hub.peek(stream)
    assert room is not None
    return dict(plain(room.snapshot()))


async def test_refusals(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        creator, stream, (ana, bo, cy), dee = await _evening(client)
        other = await register(client, "creator")
        path = f"/v1/streams/{stream}"
        # Who: a viewer, another creator, nobody.
        assert_problem(await _thank(ana, stream), 403, "not_a_creator")
        assert_problem(await _thank(other, stream), 403, "not_your_stream")
        assert_problem(await other.get(f"{path}/supporters"), 403, "not_your_stream")
        assert_problem(await ana.get(f"{path}/supporters"), 403, "not_a_creator")
        r = await client.post(f"{path}/thanks", json={"message": "hi"})
        assert r.status_code == 401, r.text
        # Which stream: unknown, still live.
        assert_problem(await _thank(creator, "st_nope"), 404, "stream_not_found")
        assert_problem(await creator.get("/v1/streams/st_nope/supporters"), 404, "stream_not_found")
        live = await other.go_live()
        assert_problem(await _thank(other, live), 409, "stream_still_live")
        assert_problem(await other.get(f"/v1/streams/{live}/supporters"), 409, "stream_still_live")
        # What: the message by chat's rules.
        for message in ("", "   ", "x" * 201, "ding\x07", "line\nbreak"):
            assert_problem(await _thank(creator, stream, message=message), 422, "invalid_message")
        r = await creator.post(f"{path}/thanks", {"message": 42})
        assert_problem(r, 422, "invalid_request")
        r = await creator.post(f"{path}/thanks", {"message": "hi", "extra": 1})
        assert_problem(r, 422, "invalid_request")
        # To whom: supporters only, each once, at most SUPPORTERS_MAX.
        r = await _thank(creator, stream, recipient_ids=[ana.id, dee.id])
        assert_problem(r, 422, "not_a_supporter")
        assert r.json()["user_ids"] == [dee.id]
        assert_problem(
            await _thank(creator, stream, recipient_ids=[creator.id]), 422, "not_a_supporter"
        )
        assert_problem(
            await _thank(creator, stream, recipient_ids=[ana.id, ana.id]), 422, "invalid_request"
        )
        assert_problem(await _thank(creator, stream, recipient_ids=[]), 422, "invalid_request")
        many = list(range(1, SUPPORTERS_MAX + 2))
        assert_problem(
            await _thank(creator, stream, recipient_ids=many), 422, "too_many_recipients"
        )
        r = await _thank(creator, stream, recipient_ids=list(range(1, 200)))
        assert_problem(r, 422, "invalid_request")
        # A stream nobody gave in.
        await _end(other, live)
        quiet = await other.go_live()
        await _end(other, quiet)
        assert_problem(await _thank(other, quiet), 409, "no_supporters")
        # Nothing was stored by any refusal: the first good request is still the first.
        assert (await _thank(creator, stream, recipient_ids=[bo.id])).status_code == 201
        # Taking it down: not a moderator of this creator; no thank-you there.
        r = await ana.client.delete(f"{path}/thanks", headers=ana.auth)
        assert_problem(r, 403, "not_moderator")
        r = await other.client.delete(f"/v1/streams/{quiet}/thanks", headers=other.auth)
        assert_problem(r, 404, "thanks_not_found")
        r = await other.client.delete("/v1/streams/st_nope/thanks", headers=other.auth)
        assert_problem(r, 404, "stream_not_found")
        assert cy


async def test_rate_limited(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        creator = await register(client, "creator")
        codes = [(await _thank(creator, "st_nope")).json()["code"] for _ in range(25)]
        assert "thanks_rate_limited" in codes, codes


async def test_concurrent_first_requests_make_one(economy_app: AppFactory) -> None:
    """Requests racing for the first thank-you: one is made, the same ones answer it, a
    different one is refused; never a 500, never two."""
    async with economy_app() as client:
        creator, stream, (ana, bo, _), _ = await _evening(client)
        same = [_thank(creator, stream, message="race", recipient_ids=[ana.id]) for _ in range(4)]
        other = [_thank(creator, stream, message="other", recipient_ids=[bo.id])]
        answers = await asyncio.gather(*same, *other)
        statuses = sorted(r.status_code for r in answers)
        assert 500 not in statuses, [r.text for r in answers]
        made = [r for r in answers if r.status_code == 201]
        assert len(made) == 1, [r.text for r in answers]
        winner = made[0].json()["message"]
        for r in answers:
            if r.status_code == 200:
                assert r.json() == made[0].json()
            else:
                assert r.status_code in (201, 409), r.text
        retried, refused = (3, 1) if winner == "race" else (0, 4)
        assert statuses == [200] * retried + [201] + [409] * refused
        thanks = (await creator.get(f"/v1/streams/{stream}/supporters")).json()["thanks"]
        assert thanks["message"] == winner


async def test_a_webhook_says_thanks_sent_once(economy_app: AppFactory) -> None:
    """``thanks.sent`` to the creator's endpoints that want it, queued in the thank-you's own
    transaction: one delivery, however often the request is retried."""
    with Receiver() as receiver:
        async with economy_app(webhook_allow_private_addresses=True) as client:
            creator, stream, (ana, bo, cy), _ = await _evening(client)
            r = await creator.post(
                "/v1/creators/me/webhooks",
                {"url": receiver.url("/t"), "events": ["thanks.sent"]},
            )
            assert r.status_code == 201, r.text
            sent = await _thank(creator, stream, message="merci")
            assert sent.status_code == 201, sent.text
            assert (await _thank(creator, stream, message="merci")).status_code == 200
            [got] = await receiver.until(lambda got: len(got) == 1)
            assert got.event["id"] == f"thanks.sent:{stream}"
            assert got.event["type"] == "thanks.sent"
            assert got.event["data"] == {
                "stream_id": stream,
                "title": "Friday jazz",
                "message": "merci",
                "to_all": True,
                "recipients": [
                    {"user_id": p.id, "handle": p.user["handle"]} for p in (ana, bo, cy)
                ],
            }
            db = app_services(client.app).db  # type: ignore[attr-defined]
            with db.connect() as conn:
                rows = conn.execute(select(func.count()).select_from(webhook_deliveries))
                assert rows.scalar_one() == 1


async def test_the_studio_offers_the_last_stream_then_says_it_was_sent(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        creator, stream, (ana, bo, cy), _ = await _evening(client)
        page = (await _page(client, "/studio", creator)).text
        assert f'data-stream="{stream}"' in page
        assert 'id="thanks-form"' in page
        for person in (ana, bo, cy):
            assert f'value="{person.id}" checked' in page
        assert (await _thank(creator, stream, message="<b>merci</b>")).status_code == 201
        page = (await _page(client, "/studio", creator)).text
        assert 'id="thanks-form"' not in page
        assert "&lt;b&gt;merci&lt;/b&gt;" in page  # escaped, never markup
        profile = (await client.get(f"/@{ana.user['handle']}")).text
        assert "&lt;b&gt;merci&lt;/b&gt;" in profile
        assert "<b>merci</b>" not in profile
        await creator.go_live("Next")  # live: the dashboard, no thank-you panel
        assert 'id="thanks-panel"' not in (await _page(client, "/studio", creator)).text

"""The creator studio's pages, in process, on SQLite and PostgreSQL: who may open them, what the
server draws (the stream's controls, the earnings chart and totals, the CSV link), and the live
list's creator handles the battle picker shows."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import httpx
from economy_client import AppFactory, Person, economy_app, grant, register

__all__ = ["economy_app"]


async def _page(client: httpx.AsyncClient, path: str, who: Person | None) -> httpx.Response:
    """A page as a browser sees it: the session cookie, never a bearer token."""
    client.cookies.clear()  # registering left the last person's session in the jar
    token = who.auth["Authorization"].removeprefix("Bearer ") if who else None
    headers = {"Cookie": f"gw_session={token}"} if token else {}
    return await client.get(path, headers=headers)


async def test_only_creators_get_the_studio(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        viewer = await register(client)
        creator = await register(client, "creator")
        for path in ("/studio", "/studio/earnings"):
            anonymous = await _page(client, path, None)
            assert anonymous.status_code == 303
            assert anonymous.headers["location"] == f"/login?next={path}"
            refused = await _page(client, path, viewer)
            assert refused.status_code == 403
            assert "The studio is for creators" in refused.text
            assert 'id="go-live-form"' not in refused.text
            assert (await _page(client, path, creator)).status_code == 200


async def test_the_studio_shows_the_go_live_form_then_the_live_stream(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        creator = await register(client, "creator")
        before = await _page(client, "/studio", creator)
        assert 'id="go-live-form"' in before.text
        assert 'id="end-stream"' not in before.text

        stream_id = await creator.go_live("Studio night")
        during = await _page(client, "/studio", creator)
        assert 'id="go-live-form"' not in during.text
        assert f'href="/live/{stream_id}"' in during.text
        link = (await creator.get("/v1/creators/me/overlay")).json()
        assert f'href="/overlay/live?key={link["key"]}"' in during.text  # the creator's own link
        assert 'id="end-stream"' in during.text
        assert f'"stream_id":"{stream_id}"' in during.text  # the boot data the script reads

        arabic = await _page(client, "/studio?lang=ar", creator)
        assert '<html lang="ar" dir="rtl">' in arabic.text
        assert "إنهاء البث" in arabic.text  # End stream


async def test_live_streams_are_listed_with_their_creators_handles(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        ana = await register(client, "creator")
        bo = await register(client, "creator")
        st_ana = await ana.go_live("Ana live")
        st_bo = await bo.go_live("Bo live")
        r = await client.get("/v1/streams")
        assert r.status_code == 200, r.text
        handles = {s["id"]: s["creator_handle"] for s in r.json()}
        assert handles == {st_ana: ana.user["handle"], st_bo: bo.user["handle"]}


async def test_the_earnings_page_draws_the_days_the_totals_and_the_csv_link(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        creator = await register(client, "creator")
        viewer = await register(client)
        await grant(client, viewer, 40_000)
        stream_id = await creator.go_live("Paid night")
        for gift, key in (("lion", "l1"), ("rose", "r1"), ("rose", "r2")):
            assert (await viewer.gift(stream_id, gift, key=key)).status_code == 201
        earned = 29_999 + 2

        page = await _page(client, "/studio/earnings", creator)
        assert page.status_code == 200
        html = page.text
        assert f'id="total-diamonds" data-diamonds="{earned}"' in html
        today = datetime.now(UTC).date().isoformat()
        # One bar, today's, in an SVG named for screen readers; a table says the same.
        svg = re.search(r"<svg id=\"earnings-chart\"[^>]*>.*?</svg>", html, re.S)
        assert svg is not None
        assert 'role="img"' in svg.group(0)
        assert 'aria-label="Diamonds earned per day' in svg.group(0)
        bars = re.findall(r'<rect class="bar( today)?"[^>]*data-day="([\d-]+)"', svg.group(0))
        assert bars == [(" today", today)]
        assert f'<tr data-day="{today}">' in html
        assert f'<tr data-stream="{stream_id}">' in html
        assert "30 days" in html
        # The payout minimum (50 USD) in diamonds at half a cent each; all of them available.
        assert "The minimum is 10,000 diamonds ($50.00)." in html
        assert 'id="available-diamonds">30,001<' in html

        link = re.search(r'id="csv-link" href="([^"]+)"', html)
        assert link is not None
        client.cookies.clear()
        r = await client.get(link.group(1).replace("&amp;", "&"), headers=creator.auth)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[0][:3] == ["day", "stream_id", "stream_title"]
        *lines, total = rows[1:]
        assert sum(int(row[5]) for row in lines) == earned == int(total[5])

        week = await _page(client, "/studio/earnings?days=7", creator)
        assert 'aria-current="page">7 days' in week.text
        odd = await _page(client, "/studio/earnings?days=12", creator)  # not offered: the default
        assert odd.status_code == 200
        assert 'aria-current="page">30 days' in odd.text


async def test_the_earnings_page_shows_the_rate_earned_and_the_hundredths_not_yet_whole(
    economy_app: AppFactory,
) -> None:
    # At 80 diamonds per 100 coins a Rose earns 0.80 diamond (issue 22): the page shows the
    # rate the period's gifts came to, and the hundredths waiting to become a diamond.
    async with economy_app(creator_diamonds_per_100_coins=80) as client:
        creator = await register(client, "creator")
        stream = await creator.go_live()
        viewer = await register(client)
        await grant(client, viewer, 10)
        for _ in range(3):
            assert (await viewer.gift(stream, "rose")).status_code == 201
        page = await _page(client, "/studio/earnings", creator)
        assert page.status_code == 200
        rate = re.search(r'id="earned-rate"><bdi dir="ltr">([^<]*)</bdi>', page.text)
        assert rate is not None
        assert rate.group(1) == "80"
        # The page carried the 2 whole diamonds into the balance first: 40 hundredths wait.
        assert 'id="fraction-pending">and 40 hundredths of a diamond' in page.text
        assert 'id="available-diamonds">2<' in page.text
        spanish = await _page(client, "/studio/earnings?lang=es", creator)
        assert "Diamantes por cada 100 monedas" in spanish.text

"""Follow from the viewer page in a real browser; then, while the followed creator has the room
open, the home page's card says so ("1 of the people you follow is watching"). An anonymous
visitor's Follow asks them to log in. No console errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import websockets
from browser import chromium, collect_errors
from liveclient import Client, as_user, go_live, person
from playwright.async_api import expect
from serverproc import one_server

from giftwave.db.urls import DatabaseUrl


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_follow_on_the_viewer_page_then_see_them_watching_on_home(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            creator_id, token = await person(http, "creator")
            stream_id = await go_live(http, token, "Follow me")

            anonymous = await (await browser.new_context()).new_page()
            fan = await (
                await browser.new_context(viewport={"width": 360, "height": 740})
            ).new_page()
            errors = collect_errors(anonymous, fan)

            await anonymous.goto(f"{base}/live/{stream_id}")
            await anonymous.click("#follow")
            await expect(
                anonymous.locator(f"a[href='/login?next=%2Flive%2F{stream_id}']").last
            ).to_be_visible()

            await fan.goto(f"{base}/signup?next=/live/{stream_id}")
            await fan.fill("input[name=handle]", "followfan")
            await fan.fill("input[name=email]", "followfan@web.test")
            await fan.fill("input[name=password]", "a-long-password")
            await fan.fill("input[name=birth_date]", "1992-04-05")
            await fan.select_option("select[name=country]", "US")
            await fan.click("button[type=submit]")
            await fan.wait_for_url(f"{base}/live/{stream_id}")
            follow = fan.locator("#follow")
            await expect(follow).to_have_attribute("aria-pressed", "false")
            await follow.click()
            await expect(follow).to_have_attribute("aria-pressed", "true")
            await expect(follow).to_have_text("Following")
            count = await http.get(f"/v1/users/{creator_id}/followers/count")
            assert count.json()["followers"] == 1

            ws_url = await as_user(
                http, base.replace("http://", "ws://") + f"/v1/streams/{stream_id}/ws", token
            )
            async with websockets.connect(ws_url) as creator_ws:
                await Client(creator_ws).recv()  # the creator has their room open
                await fan.goto(f"{base}/")
                card = fan.locator(f"a.card-link[href='/live/{stream_id}']")
                await expect(card.locator(".card-friends")).to_have_text(
                    "1 of the people you follow is watching"
                )
                await fan.goto(f"{base}/live/{stream_id}?lang=es")
                await expect(fan.locator("#friends-watching")).to_have_text(
                    "1 de las personas que sigues está viendo"
                )
                await expect(fan.locator("#follow")).to_have_text("Siguiendo")
            await fan.goto(f"{base}/?lang=en")
            await expect(fan.locator(".card-friends")).to_have_count(0)  # the creator left
            assert errors == []

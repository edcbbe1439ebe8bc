"""The OBS overlay in a real browser: gifts sent through the API appear as alerts with their
combo counters, a big gift stands out, the goal bar follows the room, and a gifter's level-up
is an alert with their badge."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from browser import chromium, collect_errors
from liveclient import person
from serverproc import ADMIN_TOKEN, one_server

from giftwave.db.urls import DatabaseUrl
from giftwave.social.levels import Curve

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_the_overlay_shows_gifts_combos_and_the_goal(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path, GIFTWAVE_LIVE_COMBO_QUIET_MS="1500") as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            viewer_id, viewer_token = await person(http, "viewer")
            _, creator_token = await person(http, "creator")
            creator = {"Authorization": f"Bearer {creator_token}"}
            viewer = {"Authorization": f"Bearer {viewer_token}"}
            r = await http.post(
                f"/v1/admin/users/{viewer_id}/coins",
                json={"coins": 100_000, "idempotency_key": "overlay"},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
            stream = (await http.post("/v1/streams", json={"title": "o"}, headers=creator)).json()
            link = (await http.get("/v1/creators/me/overlay", headers=creator)).json()["url"]
            key = link.rsplit("=", 1)[1]
            missing = await http.get(f"/overlay/st_nosuchstream?key={key}")
            assert missing.status_code == 404
            assert "no such stream" in missing.text

            async with chromium() as browser:
                page = await browser.new_page(viewport={"width": 1280, "height": 720})
                errors = collect_errors(page)
                await page.goto(link)  # the creator's link: it follows their live stream
                await page.wait_for_selector("body[data-connected='1']", timeout=10_000)
                r = await http.put(
                    f"/v1/streams/{stream['id']}/goal",
                    json={"kind": "coins", "target": 40_000, "title": "Lion night"},
                    headers=creator,
                )
                assert r.status_code == 200, r.text
                for n in range(3):
                    r = await http.post(
                        f"/v1/streams/{stream['id']}/gifts",
                        json={"gift_id": "rose", "idempotency_key": f"rose-{n}"},
                        headers=viewer,
                    )
                    assert r.status_code == 201, r.text
                r = await http.post(
                    f"/v1/streams/{stream['id']}/gifts",
                    json={"gift_id": "lion", "idempotency_key": "lion"},
                    headers=viewer,
                )
                assert r.status_code == 201, r.text

                rose = page.locator("li.alert[data-gift='rose']")
                await rose.and_(page.locator("[data-count='3']")).wait_for(timeout=10_000)
                assert await rose.locator(".count").text_content() == "x3"
                assert "Rose" in (await rose.locator(".text").text_content() or "")
                lion = page.locator("li.alert[data-gift='lion']")
                await lion.wait_for(timeout=10_000)
                assert "big" in (await lion.get_attribute("class") or "")
                goal = page.locator("#goal")
                await goal.wait_for(state="visible", timeout=10_000)
                await page.wait_for_function(
                    "document.querySelector('#goal .goal-numbers').textContent"
                    ".startsWith('30,002')",
                    timeout=10_000,
                )
                assert await goal.locator(".goal-title").text_content() == "Lion night"
                # The lion took the viewer up a few levels: "… reached level N", with the badge.
                level = Curve.configured(()).level(30_002)
                alert = page.locator(".level-up-alert", has_text=f"reached level {level}")
                await alert.wait_for(timeout=10_000)
                assert await alert.locator(".level-badge").text_content() == str(level)
                assert errors == []

"""Every page a viewer sees passes axe-core's WCAG 2.1 A/AA rules (colour contrast, names,
labels, landmarks, language) in English and Arabic, on a desktop and a phone, with no console
errors; a browser asking for an address that is not there gets the friendly page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from browser import chromium, collect_errors
from liveclient import person
from playwright.async_api import Page
from serverproc import ADMIN_TOKEN, one_server

from giftwave.db.urls import DatabaseUrl

WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
VIEWPORTS = ({"width": 1280, "height": 800}, {"width": 360, "height": 740})


async def _violations(page: Page) -> list[str]:
    results: dict[str, Any] = (await Axe().run(page, options=WCAG_AA)).response
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes'][:3]]}"
        for v in results["violations"]
    ]


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_the_pages_meet_wcag_aa_in_every_direction_and_size(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            viewer_id, viewer_token = await person(http, "viewer")
            _, creator_token = await person(http, "creator")
            creator = {"Authorization": f"Bearer {creator_token}"}
            r = await http.post("/v1/streams", json={"title": "a11y"}, headers=creator)
            stream = r.json()
            await http.put(
                f"/v1/streams/{stream['id']}/goal",
                json={"kind": "coins", "target": 1000, "title": "Goal"},
                headers=creator,
            )
            await http.post(
                f"/v1/admin/users/{viewer_id}/coins",
                json={"coins": 100, "idempotency_key": "a11y"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            r = await http.post(
                f"/v1/streams/{stream['id']}/gifts",
                json={"gift_id": "rose", "idempotency_key": "a11y-rose"},
                headers={"Authorization": f"Bearer {viewer_token}"},
            )
            assert r.status_code == 201, r.text
            missing = await http.get("/no/such/page", headers={"Accept": "text/html"})
            assert missing.status_code == 404
            assert "There is no such page" in missing.text
            api_missing = await http.get("/v1/no/such/thing", headers={"Accept": "text/html"})
            assert api_missing.headers["content-type"] == "application/problem+json"

            pages = ["/", f"/live/{stream['id']}", f"/embed/{stream['id']}", "/login", "/signup"]
            found: dict[str, list[str]] = {}
            for viewport in VIEWPORTS:
                for locale in ("en", "ar"):
                    context = await browser.new_context(viewport=viewport, locale=locale)
                    page = await context.new_page()
                    errors = collect_errors(page)
                    for path in [*pages, "/no/such/page"]:
                        await page.goto(base + path)
                        await page.wait_for_load_state("networkidle")
                        problems = await _violations(page)
                        if problems:
                            found[f"{path} {locale} {viewport['width']}px"] = problems
                    # A 404 is logged by the browser for the missing page only.
                    assert [e for e in errors if "404" not in e] == []
                    await context.close()
            assert found == {}

"""The receive-gifted-subscriptions setting on one's own profile page, in Debian's Chromium
against a real server: the box says what the API says (on by default), a click turns it off
(``GET /v1/me/gifted-subscriptions`` answers false, a reload keeps it), in Spanish and in
Arabic (right to left); another person's profile has no such box. No console errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from browser import chromium, collect_errors, log_in, screenshot
from liveclient import named_person
from playwright.async_api import expect
from serverproc import ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
LABEL = {"es": "Recibir suscripciones regaladas", "ar": "تلقي الاشتراكات المهداة"}
pytestmark = pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("web-gifted")) as proc:
        yield proc


async def test_the_profile_turns_receiving_gifted_subscriptions_off(
    server: ServerProcess,
) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        _, token, fan = await named_person(http, "viewer")
        _, _, other = await named_person(http, "viewer")
        setting = {"Authorization": f"Bearer {token}"}
        page = await log_in(browser, base, fan, PASSWORD, f"/@{fan}", locale="es")
        errors = collect_errors(page)
        box = page.locator("#gifted-accept")
        await expect(page.locator("label", has=box)).to_have_text(LABEL["es"])
        await expect(box).to_be_checked()
        await box.click()
        await expect(page.locator(".toast")).to_have_text("Guardado")
        r = await http.get("/v1/me/gifted-subscriptions", headers=setting)
        assert r.json() == {"accept": False}
        await page.reload()
        await expect(box).not_to_be_checked()
        await page.goto(f"{base}/@{other}")
        await expect(page.locator("#clips")).to_be_visible()
        assert await page.locator("#gifted-accept").count() == 0
        ar = await log_in(browser, base, fan, PASSWORD, f"/@{fan}", locale="ar")
        errors.watch(ar)
        assert await ar.get_attribute("html", "dir") == "rtl"
        await expect(ar.locator("label", has=ar.locator("#gifted-accept"))).to_have_text(
            LABEL["ar"]
        )
        await ar.locator("#gifted-accept").click()
        await expect(ar.locator("#gifted-accept")).to_be_checked()
        await expect(ar.locator(".toast")).to_have_text("تم الحفظ")
        assert await _accepts(http, setting)
        await screenshot(ar, "gifted-setting-profile-ar")
        assert errors == [], errors


async def _accepts(http: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    return bool((await http.get("/v1/me/gifted-subscriptions", headers=headers)).json()["accept"])

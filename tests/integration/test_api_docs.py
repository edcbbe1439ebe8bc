"""The API's documentation pages work offline: in Chromium with every request that is not for
127.0.0.1 aborted (and remembered), /docs lists every one of the API's operations and /redoc
renders them, with no console error (a script or style the page policy refused is one) and no
request that left this machine. The pages' policy runs no inline script but the one Swagger UI
starts from.

Swagger UI draws a long list only where the window is (past about 115 operations it renders
what is on screen and keeps the rest as empty height): what it draws is counted as a reader
sees it, scrolling down the page, every operation seen at least once."""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import httpx
import pytest
from browser import chromium, collect_errors, screenshot
from playwright.async_api import Page, Route
from serverproc import one_server

from giftwave.db.urls import DatabaseUrl

LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "[::1]", "::1"})
WAIT_MS: Final = 20_000
MIN_OPERATIONS: Final = 20  # the API has well over a hundred; a blank page has none
SCROLLS_MAX: Final = 400  # a bound on the reading: the page is some 15 windows long


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_docs_and_redoc_render_with_every_outside_request_blocked(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            spec = (await http.get("/openapi.json")).json()
            for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
                page = await http.get(path)
                assert page.status_code == 200, path
                policy = page.headers["content-security-policy"]
                assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";")[0]
                assert "frame-ancestors 'none'" in policy

        outside: list[str] = []

        async def local_only(route: Route) -> None:
            if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
                await route.continue_()
            else:
                outside.append(route.request.url)
                await route.abort()

        async with chromium() as browser:
            context = await browser.new_context()
            await context.route("**/*", local_only)
            page = await context.new_page()
            errors = collect_errors(page)

            await page.goto(f"{server.base_url}/docs")
            await page.locator(".opblock").first.wait_for(timeout=WAIT_MS)
            await screenshot(page, "api-docs")
            swagger_operations = await _read_every_operation(page)

            await page.goto(f"{server.base_url}/redoc")
            title = page.locator("h1", has_text="giftwave")
            await title.wait_for(timeout=WAIT_MS)
            assert await page.locator("[data-section-id^='operation/']").count() >= MIN_OPERATIONS
            await context.close()

        assert outside == []
        assert errors == []
        # An operation is drawn once under each of its tags.
        expected = {
            (tag, op["operationId"])
            for item in spec["paths"].values()
            for op in item.values()
            for tag in op.get("tags", ["default"])
        }
        assert len(expected) >= MIN_OPERATIONS
        assert len(swagger_operations) == len(expected), sorted(swagger_operations)


async def _read_every_operation(page: Page) -> set[str]:
    """The ids of the operations Swagger UI draws while the page is scrolled to its end."""
    seen: set[str] = set()
    for _ in range(SCROLLS_MAX):
        ids = await page.locator(".opblock[id^='operations-']").evaluate_all(
            "blocks => blocks.map(b => b.id)"
        )
        seen.update(ids)
        at_end = await page.evaluate(
            "() => { const before = window.scrollY; window.scrollBy(0, window.innerHeight / 2);"
            " return window.scrollY === before; }"
        )
        if at_end:
            return seen
        await page.wait_for_timeout(50)  # the next window drawn
    raise AssertionError(f"the page did not end within {SCROLLS_MAX} scrolls")

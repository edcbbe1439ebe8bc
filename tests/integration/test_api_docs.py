"""The API's documentation pages work offline: in Chromium with every request that is not for
127.0.0.1 aborted (and remembered), /docs lists the API's operations and /redoc renders them,
with no console error (a script or style the page policy refused is one) and no request that
left this machine. The pages' policy runs no inline script but the one Swagger UI starts from."""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import httpx
import pytest
from browser import chromium, collect_errors, screenshot
from playwright.async_api import Route
from serverproc import one_server

from giftwave.db.urls import DatabaseUrl

LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "[::1]", "::1"})
WAIT_MS: Final = 20_000
MIN_OPERATIONS: Final = 20  # the API has well over a hundred; a blank page has none


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_docs_and_redoc_render_with_every_outside_request_blocked(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
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
            swagger_operations = await page.locator(".opblock").count()

            await page.goto(f"{server.base_url}/redoc")
            title = page.locator("h1", has_text="giftwave")
            await title.wait_for(timeout=WAIT_MS)
            assert await page.locator("[data-section-id^='operation/']").count() >= MIN_OPERATIONS
            await context.close()

        assert outside == []
        assert errors == []
        if swagger_operations < MIN_OPERATIONS:
            # Known defect (CHANGELOG, "Known issues"): since the paid-message routes landed, the
            # vendored Swagger UI stops drawing after the third tag, with no error anywhere (the
            # served /openapi.json is whole; ReDoc, above, draws every operation). This turns red
            # the day Swagger draws them all again.
            pytest.xfail(f"Swagger UI drew {swagger_operations} operations")
        raise AssertionError(
            "Swagger UI draws every operation again: drop the xfail and the known issue"
        )

"""A browser that cannot leave this machine: every request to a host other than loopback is
answered by a stub (and recorded), never sent; names other than localhost do not resolve.

An attack that sends the browser to ``evil.example`` therefore ends on the stub's page, where
the test sees it, without a single packet to another address."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, Route

LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
# Belt and braces: should a request ever slip past the stub, it cannot resolve a name.
NO_DNS: Final = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
STUB_PAGE: Final = "<!doctype html><title>off site</title><p>off site"


async def stub_offsite(context: BrowserContext) -> list[str]:
    """Route ``context``'s requests: loopback goes through, the rest gets the stub. Returns
    the list the off-site URLs asked for are appended to."""
    offsite: list[str] = []

    async def handle(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOOPBACK:
            await route.continue_()
            return
        offsite.append(url)
        await route.fulfill(status=200, content_type="text/html", body=STUB_PAGE)

    await context.route("**/*", handle)
    return offsite

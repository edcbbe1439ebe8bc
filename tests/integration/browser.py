"""Debian's Chromium driven by Playwright, for the browser tests: never a downloaded browser
(`make test` installs the package), no sandbox (tests run as root), no background traffic.
Every page's console errors and uncaught exceptions are collected, so a test can demand none.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, NoReturn

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM: Final = "/usr/bin/chromium"
# The product's pictures, taken by the browser tests on every run (README links copies of them
# kept in docs/screenshots). GIFTWAVE_SCREENSHOT_DIR moves them, e.g. into a CI artifact folder.
SCREENSHOT_DIR: Final = Path(
    os.environ.get("GIFTWAVE_SCREENSHOT_DIR")
    or Path(__file__).resolve().parents[2] / "build" / "screenshots"
)


@asynccontextmanager
async def chromium(*extra_args: str) -> AsyncIterator[Browser]:
    path = shutil.which("chromium") or CHROMIUM
    if not shutil.which(path):
        pytest.fail("Chromium is required for the browser tests: apt-get install -y chromium")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=path,
            args=["--no-sandbox", "--disable-background-networking", *extra_args],
        )
        try:
            yield browser
        finally:
            await browser.close()


class ConsoleErrors(list[str]):
    """One live list of console errors and uncaught exceptions, filled by every page it watches.

    It refuses `+`: `collect_errors(a) + collect_errors(b)` would be a new list holding what the
    two had logged so far (nothing), which no later event fills, so `assert errors == []` could
    never fail. `[*collect_errors(a), *collect_errors(b)]` and `errors += collect_errors(a)` copy
    the same way and cannot be refused: watch several pages with `collect_errors(a, b)`, or one
    opened later with `errors.watch(page)`.
    """

    def watch(self, page: Page) -> None:
        page.on("console", lambda m: self.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.append(str(e)))

    def __add__(self, other: object) -> NoReturn:
        raise TypeError("a sum of ConsoleErrors is a copy nothing fills: collect_errors(a, b)")

    def __radd__(self, other: object) -> NoReturn:
        self.__add__(other)

    def __iadd__(self, other: object) -> NoReturn:
        raise TypeError("ConsoleErrors grows by itself: watch another page with errors.watch(page)")


def with_level(handle: str) -> re.Pattern[str]:
    """A top gifter's name cell: the handle, after their gifter level's badge once the level
    follower (off the gift path, about a second behind) has counted their gifts."""
    return re.compile(rf"^(\d+\s+)?{re.escape(handle)}$")


def collect_errors(*pages: Page) -> ConsoleErrors:
    """The console errors of all these pages, in one list that grows as any of them logs one."""
    errors = ConsoleErrors()
    for page in pages:
        errors.watch(page)
    return errors


async def log_in(
    browser: Browser, base: str, handle: str, password: str, to: str, **context: Any
) -> Page:
    """A new browser context (``context``: viewport, locale…) logged in through the log-in
    page as ``handle``, on ``to``."""
    page = await (await browser.new_context(**context)).new_page()
    await page.goto(f"{base}/login?next={to}")
    await page.fill("input[name=login]", handle)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}{to}")
    return page


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    await page.screenshot(path=str(path))
    return path

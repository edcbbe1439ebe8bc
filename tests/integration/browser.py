"""Debian's Chromium driven by Playwright, for the browser tests: never a downloaded browser
(`make test` installs the package), no sandbox (tests run as root), no background traffic.
Every page's console errors and uncaught exceptions are collected, so a test can demand none.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

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


def collect_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


async def screenshot(page: Page, name: str) -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    await page.screenshot(path=str(path))
    return path

"""The browser tests' console-error record: one live list for several pages, so an error logged
by any of them, at any time after it is watched, fails the test that demands none."""

from __future__ import annotations

import pytest
from browser import chromium, collect_errors

LOGS_LATER = "<script>setTimeout(() => console.error('late from {name}'), 50)</script>"


async def test_errors_of_every_page_arrive_in_the_one_list_after_it_was_made() -> None:
    async with chromium() as browser:
        first, second, third = [await browser.new_page() for _ in range(3)]
        errors = collect_errors(first, second)
        errors.watch(third)  # a page opened later joins the same list
        for name, page in (("first", first), ("second", second), ("third", third)):
            await page.set_content(LOGS_LATER.format(name=name))
        await second.evaluate("() => { setTimeout(() => { throw new Error('thrown') }, 0) }")
        for page in (first, second, third):
            await page.wait_for_timeout(200)
        assert sorted(errors) == [
            "late from first",
            "late from second",
            "late from third",
            "thrown",
        ]


async def test_a_sum_of_two_records_is_refused_because_nothing_would_fill_it() -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        with pytest.raises(TypeError, match="collect_errors"):
            _ = collect_errors(page) + collect_errors(page)
        with pytest.raises(TypeError, match="collect_errors"):
            _ = [] + collect_errors(page)  # noqa: RUF005 (the very sum under test)

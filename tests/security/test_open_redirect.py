"""Open redirect after logging in or signing up (#16, item 3).

The attacker sends a victim a link to giftwave's real login page whose ``next`` leads off the
site once the browser has read it: tabs and newlines are dropped (``/%09/evil.example`` is
``//evil.example``), a backslash is a slash, leading spaces and controls go. The victim logs
in on the genuine page and lands on the attacker's look-alike. Every variant is tried in
Chromium through a real login and a real sign-up; the browser cannot leave this machine (a
stub answers for every other host, offsite_stub.py), so leaving the site shows up as a stub
hit. The page script's own check is tried on its own, in the same browser, against the
browser's URL parser. SQLite only: no storage is involved in where a login lands."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from browser import chromium
from liveclient import person
from offsite_stub import NO_DNS, stub_offsite
from playwright.async_api import Browser, Page
from serverproc import ServerProcess, one_server

from giftwave.bench.scratch import scratch_database

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
# As they appear in the link the attacker sends (percent-encoded in the query).
ATTACKS = [
    "/%09/evil.example/x",  # tab, dropped by the browser: //evil.example/x
    "/%0A/evil.example/x",  # newline
    "/%0D/evil.example/x",  # carriage return
    "%09//evil.example/x",  # leading tab
    "%20%0C//evil.example/x",  # leading space and form feed, stripped
    "/%5Cevil.example/x",  # /\evil.example: a backslash is a slash
    "%5C%5Cevil.example/x",
    "//evil.example/x",
    "%2F%2Fevil.example/x",
    "https:evil.example/x",
    "https://evil.example/x",
    "javascript:alert(document.domain)",
]
_handles = itertools.count(1)
SIGNUPS = {"GIFTWAVE_REGISTER_ADDRESS_FREE": "1000"}
BROWSERS_AT_ONCE = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = f"sqlite:///{tmp_path_factory.mktemp('redirect')}/base.db"
    with (
        scratch_database(base, "proc") as db,
        # Sign-ups per address are limited (tests/security/test_login_throttle.py): here
        # one address signs up once per attack.
        one_server(db, tmp_path_factory.mktemp("logs"), **SIGNUPS) as running,
    ):
        yield running


async def _lands(page: Page, base: str, url: str, fill: dict[str, str]) -> str:
    """Open ``url`` (a login or sign-up page), submit the form, return where the browser is
    once it has left that page."""
    await page.goto(base + url)
    for name, value in fill.items():
        if name == "country":  # a picker of countries, not a text field
            await page.select_option("#auth-form select[name=country]", value)
        else:
            await page.fill(f"#auth-form input[name={name}]", value)
    await page.click("#auth-form button[type=submit]")
    await page.wait_for_url(lambda u: not urlsplit(u).path.startswith(("/login", "/signup")))
    return page.url


def _signup_fields() -> dict[str, str]:
    handle = f"redir{next(_handles)}"
    return {
        "handle": handle,
        "email": f"{handle}@redirect.test",
        "password": PASSWORD,
        "birth_date": "1990-01-01",
        "country": "US",
    }


async def test_login_and_signup_never_land_off_site(server: ServerProcess) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        _, token = await person(http, "viewer")
        handle = (await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).json()[
            "handle"
        ]
    login = {"login": handle, "password": PASSWORD}

    async def attack_with(browser: Browser, attacks: list[str]) -> None:
        context = await browser.new_context()
        offsite = await stub_offsite(context)
        page = await context.new_page()
        # The control: a target on the site is honoured, so the attacks below are really
        # followed to wherever the page sends the browser.
        assert await _lands(page, base, "/login?next=/me/reach%3Fx%3D1", login) == (
            f"{base}/me/reach?x=1"
        )
        for attack in attacks:
            for mode, fields in (("login", login), ("signup", _signup_fields())):
                await context.clear_cookies()
                landed = await _lands(page, base, f"/{mode}?next={attack}", fields)
                assert offsite == [], f"{mode} with next={attack} went off site: {offsite}"
                assert landed == f"{base}/", f"{mode} with next={attack} landed on {landed}"
        await context.close()

    async with chromium(NO_DNS) as browser:
        await asyncio.gather(
            *(attack_with(browser, ATTACKS[i::BROWSERS_AT_ONCE]) for i in range(BROWSERS_AT_ONCE))
        )


async def test_the_page_script_keeps_next_on_site_by_itself(server: ServerProcess) -> None:
    """Should a page ever carry an unchecked ``next``, the script's own check (site.js
    ``localTarget``) reads it with the browser's URL parser and refuses each attack."""
    async with chromium(NO_DNS) as browser:
        context = await browser.new_context()
        offsite = await stub_offsite(context)
        page = await context.new_page()
        await page.goto(server.base_url + "/login")
        targets = [unquote(a) for a in ATTACKS]
        got = await page.evaluate(
            "async (targets) => { const m = await import('/static/site.js');"
            " return targets.map((t) => m.localTarget(t)); }",
            targets,
        )
        assert got == ["/"] * len(targets), dict(zip(targets, got, strict=True))
        kept = await page.evaluate(
            "import('/static/site.js').then((m) => m.localTarget('/shop?order=o1#top'))"
        )
        assert kept == "/shop?order=o1#top"
        assert offsite == []
        await context.close()


async def test_the_login_page_and_its_redirect_name_only_this_site(server: ServerProcess) -> None:
    """The server's check: the form carries "/" for every attack, and a visitor already
    logged in is redirected to "/" (303), never to the attacker's target."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        _, token = await person(http, "viewer")
        for attack in ATTACKS:
            for mode in ("login", "signup"):
                r = await http.get(f"/{mode}?next={attack}")
                assert r.status_code == 200, r.text
                assert 'data-next="/" ' in r.text, (attack, r.text)
        logged_in = {"Cookie": f"gw_session={token}"}
        for attack in ATTACKS:
            r = await http.get(f"/login?next={attack}", headers=logged_in)
            assert r.status_code == 303, (attack, r.status_code)
            assert r.headers["location"] == "/", (attack, r.headers["location"])


async def test_a_login_sent_before_its_script_runs_keeps_the_password_out_of_the_url(
    server: ServerProcess,
) -> None:
    """A visitor on a slow link submits the form before the page script has loaded (here: no
    script at all). A form without a method would GET ``/login?login=…&password=…``: the
    password in the address bar, the history and every log. The form posts instead."""
    secret = "not-in-any-url-9f3"
    async with chromium(NO_DNS) as browser:
        context = await browser.new_context(java_script_enabled=False)
        page = await context.new_page()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        for mode in ("login", "signup"):
            await page.goto(f"{server.base_url}/{mode}")
            await page.fill("#auth-form input[name=password]", secret)
            await page.click("#auth-form button[type=submit]")
            await page.wait_for_load_state()
            assert all(secret not in url for url in requests), (mode, requests)
            assert secret not in page.url, page.url
        await context.close()
    assert secret not in server.log_text()

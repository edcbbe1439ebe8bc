"""The admin console in a real browser (Debian's Chromium): an admin logs in, freezes a user
found by search (whose gifts are then refused), reverses a gift (the creator's board and wallet
drop it), approves a payout from the queue, changes a gift's price (a new version, and the shop
sells at the new price) and runs the ledger check. Anyone else gets the 403 page in their
language; nothing overflows a phone; no console errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import chromium, collect_errors
from liveclient import person
from playwright.async_api import ConsoleMessage, Page, expect
from serverproc import ADMIN_TOKEN, giftwave_env, one_server, run_cli
from sqlalchemy import insert

from giftwave.clock import now_us
from giftwave.db.engine import make_engine
from giftwave.db.tables import sandbox_payments
from giftwave.db.urls import DatabaseUrl

OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
PHONE = {"width": 360, "height": 740}


PAYOUT_MIN = {"GIFTWAVE_PAYOUT_MIN_CENTS": "100"}


async def _user(http: httpx.AsyncClient, role: str) -> tuple[int, dict[str, str], str]:
    """A new user: id, bearer header, handle."""
    user_id, token = await person(http, role)
    auth = {"Authorization": f"Bearer {token}"}
    me = await http.get("/v1/me", headers=auth)
    assert me.status_code == 200, me.text
    return user_id, auth, str(me.json()["handle"])


async def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    r = await response
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


async def _gift(
    http: httpx.AsyncClient, auth: dict[str, str], stream: str, gift: str, **kw: Any
) -> Any:
    body = {"gift_id": gift, "idempotency_key": f"{gift}-{kw.get('count', 1)}", **kw}
    return await http.post(f"/v1/streams/{stream}/gifts", json=body, headers=auth)


async def _log_in(page: Page, base: str, handle: str) -> None:
    await page.goto(f"{base}/admin")
    await page.wait_for_url(f"{base}/login?next=/admin")
    await page.fill("input[name=login]", handle)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/admin")


async def _confirm(page: Page) -> None:
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_be_visible()
    await dialog.locator(".confirm-ok").click()
    await expect(dialog).to_be_hidden()


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_an_admin_freezes_reverses_approves_reprices_and_checks_the_ledger(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path, **PAYOUT_MIN) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            creator_id, creator, _ = await _user(http, "creator")
            stream = str(
                (await _ok(http.post("/v1/streams", json={"title": "x"}, headers=creator), 201))[
                    "id"
                ]
            )
            fan_id, fan, _ = await _user(http, "viewer")
            rogue_id, rogue, rogue_handle = await _user(http, "viewer")
            admin_id, _, admin_handle = await _user(http, "viewer")
            await _ok(
                http.patch(f"/v1/admin/users/{admin_id}", json={"role": "admin"}, headers=OPERATOR)
            )
            for user_id, coins in ((fan_id, 2000), (rogue_id, 10)):
                grant = {"coins": coins, "idempotency_key": f"web-{user_id}"}
                await _ok(
                    http.post(f"/v1/admin/users/{user_id}/coins", json=grant, headers=OPERATOR)
                )
            await _ok(_gift(http, fan, stream, "hand_hearts", count=10), 201)  # 1,000 coins
            gun = await _ok(_gift(http, fan, stream, "money_gun"), 201)  # 500 coins
            await _ok(_gift(http, rogue, stream, "rose"), 201)
            payout_body = {"diamonds": 600, "idempotency_key": "cash"}
            payout = await _ok(http.post("/v1/payouts", json=payout_body, headers=creator), 201)
            board = f"/v1/creators/{creator_id}/leaderboard"
            assert (await _ok(http.get(board)))["top"][0]["coins"] == 1500

            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            errors = collect_errors(page)
            await _log_in(page, base, admin_handle)

            # Users: found by handle, frozen after a confirmation; their gifts are refused.
            await page.click("a[href='#users']")
            await page.fill("#user-search input[name=q]", rogue_handle)
            await page.press("#user-search input[name=q]", "Enter")
            row = page.locator(f"#user-table tr[data-user='{rogue_id}']")
            await expect(row).to_have_attribute("data-status", "active")
            await row.locator("button.freeze").click()
            await _confirm(page)
            await expect(row).to_have_attribute("data-status", "blocked")
            await expect(page.locator(".toast", has_text=rogue_handle)).to_be_visible()
            refused = await _gift(http, rogue, stream, "rose", count=2)
            assert refused.status_code == 403, refused.text
            assert refused.json()["code"] == "account_blocked"

            # Gifts: the Money Gun reversed; the board and the creator's wallet drop it.
            await page.click("a[href='#gifts']")
            sent = page.locator(f"#send-table tr[data-send='{gun['send_id']}']")
            await expect(sent).to_have_attribute("data-reversed", "0")
            await sent.locator("button.reverse").click()
            await _confirm(page)
            await expect(sent).to_have_attribute("data-reversed", "1")
            await expect(sent.locator("button.reverse")).to_have_count(0)
            await expect(page.locator("#order-table .empty-row")).to_be_visible()  # grants only
            assert (await _ok(http.get(board)))["top"][0]["coins"] == 1000
            wallet = await _ok(http.get("/v1/me/wallet", headers=creator))
            assert (wallet["diamonds"], wallet["diamonds_reserved"]) == (1001 - 600, 600)
            assert (await _ok(http.get("/v1/me/wallet", headers=fan)))["coins"] == 1000

            # Payouts: approved from the queue, which then no longer lists it.
            await page.click("a[href='#payouts']")
            queued = page.locator(f"#payout-table tr[data-payout='{payout['id']}']")
            # Why it waits: the policy's decision (off here, the default).
            await expect(queued.locator("td.decision")).to_have_text("Auto-approval is off")
            await queued.locator("button.approve").click()
            await _confirm(page)
            await expect(queued).to_have_count(0)
            await expect(page.locator("#payout-table .empty-row")).to_be_visible()
            mine = await _ok(http.get(f"/v1/payouts/{payout['id']}", headers=creator))
            assert (mine["status"], mine["reviewed_by"]) == ("approved", admin_id)

            # Catalogue: a new price is a new version; the shop sells at it.
            await page.click("a[href='#catalogue']")
            rose = page.locator("#gift-table tr[data-gift='rose']")
            await expect(rose).to_have_attribute("data-version", "1")
            await rose.locator("button.edit").click()
            await page.fill("#gift-form input[name=price_coins]", "3")
            await page.click("#gift-form button[type=submit]")
            await expect(rose).to_have_attribute("data-version", "2")
            await expect(rose).to_have_attribute("data-price", "3")
            prices = {g["gift_id"]: g["price_coins"] for g in (await http.get("/v1/gifts")).json()}
            assert prices["rose"] == 3

            # Ledger: checked now, clean, with the economy's totals.
            await page.click("a[href='#ledger']")
            status = page.locator("#ledger-status")
            await expect(status).to_have_attribute("data-state", "unknown")
            await page.click("#ledger-run")
            await expect(status).to_have_attribute("data-state", "ok")
            await expect(page.locator("#ledger-problems li")).to_have_count(0)
            issued = page.locator("#totals [data-total='coins_issued']")
            await expect(issued).to_have_attribute("data-value", "2010")
            paid = page.locator("#totals [data-total='diamonds_paid_out']")
            await expect(paid).to_have_attribute("data-value", "600")

            # A phone: every section fits the screen (wide tables scroll in their box).
            await page.set_viewport_size(PHONE)
            for section in ("catalogue", "users", "payouts", "gifts", "ledger"):
                await page.click(f"a[href='#{section}']")
                await expect(page.locator(f"section#{section}")).to_be_visible()
                assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            assert errors == []
            await context.close()


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_the_console_shows_the_last_reconciliation(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            admin_id, _, admin_handle = await _user(http, "viewer")
            await _ok(
                http.patch(f"/v1/admin/users/{admin_id}", json={"role": "admin"}, headers=OPERATOR)
            )
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            errors = collect_errors(page)
            await _log_in(page, base, admin_handle)
            await page.click("a[href='#ledger']")
            status = page.locator("#reconcile-status")
            await expect(status).to_have_attribute("data-state", "unknown")
            await expect(status).to_contain_text("run giftwave reconcile")

            # The sandbox took a payment giftwave never heard of; the operator's cron runs.
            engine = make_engine(bare_db_url)
            with engine.begin() as conn:
                conn.execute(
                    insert(sandbox_payments).values(
                        payment_id="pi_sb_neverheardof",
                        session_id="cs_sb_neverheardof",
                        order_id="ord_neverheardof",
                        amount_minor=499,
                        currency="USD",
                        status="succeeded",
                        created_at_us=now_us(),
                    )
                )
            engine.dispose()
            done = run_cli(["reconcile"], giftwave_env(bare_db_url))
            assert done.returncode == 1, done.stdout + done.stderr

            await page.reload()
            await expect(status).to_have_attribute("data-state", "problems")
            await expect(status).to_contain_text("Mismatches with sandbox: 1")
            row = page.locator("#reconcile-mismatches tr[data-mismatch='missing_in_ledger']")
            await expect(row).to_contain_text("pi_sb_neverheardof")
            await expect(row).to_contain_text("At the provider, not in the ledger")
            await expect(row).to_contain_text("$4.99")
            await page.set_viewport_size(PHONE)
            assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            assert errors == []
            await context.close()


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_the_console_is_for_admins_only(bare_db_url: DatabaseUrl, tmp_path: Path) -> None:
    with one_server(bare_db_url, tmp_path, **PAYOUT_MIN) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            _, _, handle = await _user(http, "viewer")
            # Logged out: asked to log in, and sent back after.
            r = await http.get("/admin", follow_redirects=False)
            assert (r.status_code, r.headers["location"]) == (303, "/login?next=/admin")

            context = await browser.new_context(locale="es")
            page = await context.new_page()
            errors = _errors_but_the_pages_own_403(page, f"{base}/admin")
            await _log_in_as_viewer(page, base, handle)
            response = await page.goto(f"{base}/admin")
            assert response is not None
            assert response.status == 403
            await expect(page.locator("h1")).to_have_text("Esta página es para administradores")
            await expect(page.locator("nav a[href='/admin']")).to_have_count(0)
            assert errors == []
            await context.close()


async def _log_in_as_viewer(page: Page, base: str, handle: str) -> None:
    await page.goto(f"{base}/login?next=/")
    await page.fill("input[name=login]", handle)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")


def _errors_but_the_pages_own_403(page: Page, url: str) -> list[str]:
    """Console errors, less Chromium's note that the document itself answered 403: that
    status is the point of the page."""
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if message.location.get("url") == url and "status of 403" in message.text:
            return
        errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", console)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors

"""Issue 22's whole flow of money out, in a real browser (Debian's Chromium) on a real server:

1. a creator onboards at the sandbox payout provider's own page and earns diamonds from gifts;
2. a small payout is approved by the operator's policy at the request (no person) and the
   studio shows it paid;
3. a larger one waits in the review queue; an admin approves it in the console, the creator's
   bank refuses the money, and the diamonds come back, once;
4. `giftwave reconcile` is clean after all of it, and reports a mismatch injected into the
   sandbox's own records (exit 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from browser import chromium, collect_errors, log_in
from liveclient import go_live, named_person, person
from playwright.async_api import Page, expect
from serverproc import ADMIN_TOKEN, giftwave_env, one_server, run_cli
from sqlalchemy import update

from giftwave.db.engine import make_engine
from giftwave.db.tables import sandbox_payout_transfers
from giftwave.db.urls import DatabaseUrl

OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
SMALL = 1_000  # diamonds: $5 at half a cent, below the policy's $10
LARGE = 3_000  # $15: a person decides


async def _confirm(page: Page) -> None:
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_be_visible()
    await dialog.locator(".confirm-ok").click()
    await expect(dialog).to_be_hidden()


async def _choose_bank(page: Page, base: str, bank: str, link: str | None = None) -> None:
    """At the sandbox's onboarding page, approve with this bank: reached from the studio's
    button, or (a verified payee, whose studio offers none) from a fresh onboarding link."""
    if link is None:
        await page.click("#payee-onboard")
    else:
        await page.goto(link)
    await page.wait_for_url(f"{base}/sandbox/onboarding/**")
    await page.select_option("select[name=bank]", bank)
    await page.click("form[action$='/approve'] button")
    await expect(page.locator("#payouts-enabled")).to_have_text("Yes")
    await page.click("a.back")
    await page.wait_for_url(f"{base}/studio/earnings")


async def _request(page: Page, diamonds: int) -> str:
    """Ask for a payout in the studio's form: the new row's payout id."""
    rows = page.locator("#payouts tr[data-id]")
    before = await rows.count()
    await page.fill("#payout-form input[name=diamonds]", str(diamonds))
    await page.click("#payout-form button[type=submit]")
    await expect(rows).to_have_count(before + 1)
    return str(await rows.first.get_attribute("data-id"))


def _reconcile(db: DatabaseUrl) -> tuple[int, dict[str, object]]:
    done = run_cli(["reconcile", "--provider", "sandbox", "--json"], giftwave_env(db))
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_money_out_from_onboarding_to_reconciliation(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(
        bare_db_url,
        tmp_path,
        GIFTWAVE_PAYOUT_PROVIDER="sandbox",
        GIFTWAVE_PAYOUT_MIN_CENTS="500",
        GIFTWAVE_PAYOUT_AUTO_APPROVE_BELOW_CENTS="1000",
        GIFTWAVE_PAYOUT_AUTO_APPROVE_MIN_HISTORY_DAYS="0",
        GIFTWAVE_PAYOUT_AUTO_APPROVE_QUIET_DAYS="0",
    ) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            _, creator_token, creator_handle = await named_person(http, "creator")
            creator = {"Authorization": f"Bearer {creator_token}"}
            viewer_id, viewer_token = await person(http, "viewer")
            admin_id, _, admin_handle = await named_person(http, "viewer")
            r = await http.patch(
                f"/v1/admin/users/{admin_id}", json={"role": "admin"}, headers=OPERATOR
            )
            assert r.status_code == 200, r.text
            r = await http.post(
                f"/v1/admin/users/{viewer_id}/coins",
                json={"coins": SMALL + LARGE, "idempotency_key": "flow"},
                headers=OPERATOR,
            )
            assert r.status_code == 200, r.text
            stream_id = await go_live(http, creator_token, "Payday")
            r = await http.post(
                f"/v1/streams/{stream_id}/gifts",
                json={"gift_id": "money_gun", "count": 8, "idempotency_key": "g"},  # 4,000
                headers={"Authorization": f"Bearer {viewer_token}"},
            )
            assert r.status_code == 201, r.text
            earned = (await http.get("/v1/me/wallet", headers=creator)).json()["diamonds"]
            assert earned >= SMALL + LARGE, earned

            # 1-2. Onboarding, then a small payout: approved by the policy, paid.
            studio = await log_in(browser, base, creator_handle, PASSWORD, "/studio/earnings")
            errors = collect_errors(studio)
            await expect(studio.locator("#payee")).to_have_attribute("data-state", "none")
            await _choose_bank(studio, base, "pays")
            await expect(studio.locator("#payee")).to_have_attribute("data-state", "verified")
            small = await _request(studio, SMALL)
            row = studio.locator(f"#payouts tr[data-id='{small}']")
            await studio.reload()
            await expect(row).to_have_attribute("data-status", "paid", timeout=15_000)
            decided = (await http.get(f"/v1/payouts/{small}", headers=creator)).json()
            assert decided["reviewed_by"] is None, decided  # nobody: the policy

            # 3. A larger one waits for a person; the bank now refuses the money.
            r = await http.post("/v1/creators/me/payee/onboarding", headers=creator)
            assert r.status_code == 200, r.text
            await _choose_bank(studio, base, "fails", link=r.json()["url"])
            before = (await http.get("/v1/me/wallet", headers=creator)).json()["diamonds"]
            large = await _request(studio, LARGE)
            await expect(studio.locator(f"#payouts tr[data-id='{large}']")).to_have_attribute(
                "data-status", "pending"
            )
            console = await log_in(browser, base, admin_handle, PASSWORD, "/admin")
            errors.watch(console)
            await console.click("a[href='#payouts']")
            queued = console.locator(f"#payout-table tr[data-payout='{large}']")
            await queued.locator("button.approve").click()
            await _confirm(console)
            await expect(queued).to_have_count(0)
            await studio.reload()
            row = studio.locator(f"#payouts tr[data-id='{large}']")
            await expect(row).to_have_attribute("data-status", "returned", timeout=15_000)
            after = (await http.get("/v1/me/wallet", headers=creator)).json()["diamonds"]
            assert after == before, (before, after)  # requested, approved, returned: all back

            # 4. The books agree; then the sandbox's record of the paid one is altered.
            code, report = _reconcile(bare_db_url)
            assert (code, report["mismatches"]) == (0, []), report
            engine = make_engine(bare_db_url)
            try:
                with engine.begin() as conn:
                    conn.execute(
                        update(sandbox_payout_transfers)
                        .where(sandbox_payout_transfers.c.idempotency_key == small)
                        .values(amount_minor=sandbox_payout_transfers.c.amount_minor + 1)
                    )
            finally:
                engine.dispose()
            code, report = _reconcile(bare_db_url)
            assert code == 1, report
            found = [(m["kind"], m["mismatch"]) for m in report["mismatches"]]  # type: ignore[attr-defined]
            assert found == [("payout", "amount_differs")], report
            assert errors == []

"""Issue 24's operator side, in a real browser (Debian's Chromium) on a real server: a
laundering ring (fresh accounts that buy coins at the sandbox and gift them all to one new
creator, who asks for a payout at once) is caught by the rules engine running off the gift
path; an admin sees it in the risk queue with its evidence (the ring's accounts, gifts and
the payout) and holds it: the payout keeps waiting for a person. The page in Arabic reads
right to left; no console errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import chromium, collect_errors, log_in
from liveclient import go_live, named_person, person
from playwright.async_api import expect
from serverproc import ADMIN_TOKEN, one_server

from giftwave.db.urls import DatabaseUrl

OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
RING = 5


async def _buy_and_gift_all(http: httpx.AsyncClient, stream: str) -> int:
    """A fresh account buys 700 coins at the sandbox checkout and gifts them: its id."""
    user_id, token = await person(http, "viewer")
    auth = {"Authorization": f"Bearer {token}"}
    packages = (await http.get("/v1/coin-packages")).json()
    package = next(p for p in packages if p["coins"] == 700)
    r = await http.post(
        "/v1/topups",
        json={"package_id": package["id"], "idempotency_key": f"ring-{user_id}"},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    session = r.json()["checkout_url"].rsplit("/", 1)[1].split("?")[0]
    r = await http.post(
        f"/sandbox/checkout/{session}/pay",
        data={"card": "4000000000009995"},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    r = await http.post(
        f"/v1/streams/{stream}/gifts",
        json={"gift_id": "money_gun", "count": 1, "idempotency_key": "all-in"},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    return user_id


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_an_admin_holds_a_laundering_rings_payout_from_the_risk_queue(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(
        bare_db_url,
        tmp_path,
        GIFTWAVE_RISK_INTERVAL_S="0.2",
        GIFTWAVE_PAYOUT_MIN_CENTS="500",
    ) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            creator_id, creator_token, creator_handle = await named_person(http, "creator")
            creator = {"Authorization": f"Bearer {creator_token}"}
            admin_id, _, admin_handle = await named_person(http, "viewer")
            r = await http.patch(
                f"/v1/admin/users/{admin_id}", json={"role": "admin"}, headers=OPERATOR
            )
            assert r.status_code == 200, r.text
            stream = await go_live(http, creator_token, "Giveaway night")
            ring = [await _buy_and_gift_all(http, stream) for _ in range(RING)]
            r = await http.post(
                "/v1/payouts", json={"diamonds": 2_500, "idempotency_key": "cash"}, headers=creator
            )
            assert r.status_code == 201, r.text
            payout: dict[str, Any] = r.json()
            assert payout["status"] == "pending"

            page = await log_in(browser, base, admin_handle, PASSWORD, "/admin/risk")
            errors = collect_errors(page)
            funnel = page.locator("li.risk-flag[data-rule='funnel']")
            for _ in range(50):  # the engine runs every 0.2 s: the flag comes within seconds
                if await funnel.count():
                    break
                await page.wait_for_timeout(200)
                await page.reload()
            await expect(funnel).to_have_count(1)
            await expect(funnel.locator("h3")).to_contain_text(f"@{creator_handle}")
            # The evidence: the ring's accounts, their gifts and the payout, each linked.
            users = funnel.locator(".risk-linked").nth(0).locator("li")
            await expect(users).to_have_count(RING)
            await expect(funnel.locator("dl.risk-facts")).to_contain_text(str(RING))
            await expect(funnel.locator(f"a:text('{payout['id']}')")).to_have_count(1)
            await expect(funnel.locator("a[href^='/live/']")).to_have_count(RING)

            await funnel.locator("button[data-decision='hold']").click()
            await expect(funnel.locator(".badge.state-held")).to_have_count(1)
            flags = (await http.get("/v1/admin/risk", headers=OPERATOR)).json()
            held = next(v for v in flags if v["flag"]["rule"] == "funnel")
            assert held["flag"]["state"] == "held"
            assert held["flag"]["decided_by"] == admin_id
            assert sorted(u["id"] for u in held["users"]) == sorted(ring)
            # Held: the payout still waits for a person.
            r = await http.get(f"/v1/payouts/{payout['id']}", headers=creator)
            assert r.json()["status"] == "pending", r.text
            assert creator_id == held["user"]["id"]

            arabic = await log_in(browser, base, admin_handle, PASSWORD, "/admin/risk", locale="ar")
            errors.watch(arabic)
            await expect(arabic.locator("html")).to_have_attribute("dir", "rtl")
            await expect(arabic.locator("li.risk-flag[data-rule='funnel']")).to_have_count(1)
            await expect(arabic.locator("h1")).to_have_text("قائمة المخاطر")
            assert errors == []

"""One evening of the economy, and every figure the product shows checked against the ledger
(issue 17, "Done means"), on SQLite and PostgreSQL.

The evening: viewers buy coins in USD, JPY and KWD through the sandbox; they gift two creators
(one with a goal); an admin reverses a gift; a top-up is partly refunded, another disputed, by
the sandbox's signed webhooks; payouts are requested, approved (one while a reversal left a
debt, which is settled first), rejected and left to expire.

Then every figure is computed here from the ledger alone (the `transfers` and `accounts` tables,
read with SQLAlchemy and summed by account, code and asset; `gift_sends` only to say which
stream a gift was for) and compared with what the product shows: the wallets, the statements
(JSON and CSV, with the rounding rule of docs/economy.md re-implemented here), the admin's
payout lists, the economy report (headline and days), the creator and stream reports, a viewer's
room socket after the reversal, the shop and checkout pages' prices and the studio's earnings
page. None of giftwave's own report or rounding functions computes an expected value.

One in-process app per database (economy_client.py); for the room socket, which the in-process
transport cannot carry, the same app also listens on a loopback port (uvicorn, in this event
loop). Settings allow a payout review of a minute at least, so the payout left to expire is
requested through the same service with a one-second review (as test_figures_payouts.py does).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import hmac
import html
import io
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import uvicorn
import websockets
from economy_client import (
    ADMIN,
    AppFactory,
    Person,
    economy_app,
    make_admin,
    payout_quickly_reviewed,
    register,
    sandbox,
)
from liveclient import Client, as_user
from serverproc import free_port
from sqlalchemy import Engine, select

from giftwave.analytics.rollup import Rollup
from giftwave.api.app import UVICORN_OPTIONS
from giftwave.api.state import app_services
from giftwave.db.tables import accounts, gift_sends, transfers
from giftwave.db.urls import DatabaseUrl

__all__ = ["economy_app"]

VALUE_MICROS: Final = 5_000  # the default diamond: half a cent
MICROS_PER_CENT: Final = 10_000
SANDBOX_SECRET: Final = "whsec_test_sandbox"  # economy_client's FAST settings
GOAL_COINS: Final = 1_500
DAILY_CAP_CENTS: Final = 820  # a creator's payouts a day: two of bo's 840 diamonds are more
RECEIPT: Final = ("coins_returned", "diamonds_taken", "diamonds_debt")
# A payout's reservation in the ledger is this prefix and the payout's id (ledger/annex.py).
PAYOUT_PREFIX: Final = "payout:"

# Written out from ISO 4217, not read from giftwave: digits of each currency's minor unit.
EXPONENT: Final = {"USD": 2, "JPY": 0, "KWD": 3}
# The packages of the evening: (currency, coins, price in that currency's minor unit), and the
# price as a shopper reads it (en_US).
PACKAGES: Final = {
    ("USD", 700): (999, "$9.99"),
    ("USD", 350): (499, "$4.99"),
    ("JPY", 700): (1_600, "¥1,600"),
    ("KWD", 700): (3_100, "KWD3.100"),
}


def shown_price(currency: str, price_minor: int) -> str:
    """What a price reads like in en_US, from the exponent alone (a hand-written rule)."""
    digits = EXPONENT[currency]
    whole, frac = divmod(price_minor, 10**digits)
    text = f"{whole:,}" + (f".{frac:0{digits}d}" if digits else "")
    return {"USD": "$", "JPY": "¥"}.get(currency, currency) + text


# --- the ledger, read and summed here --------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    debit: str
    credit: str
    amount: int
    asset: str
    code: str
    kind: str
    pending_id: str | None
    reverses_id: str | None
    day: str  # the UTC day it was committed


class Ledger:
    """The transfers table with account names, and sums of it."""

    def __init__(self, db: Engine) -> None:
        with db.connect() as conn:
            names = dict(conn.execute(select(accounts.c.id, accounts.c.name)).all())
            raw = conn.execute(select(transfers).order_by(transfers.c.seq)).all()
            self.send_stream = {
                r.transfer_id: (r.stream_id, r.sender_id, r.creator_id)
                for r in conn.execute(
                    select(
                        gift_sends.c.transfer_id,
                        gift_sends.c.stream_id,
                        gift_sends.c.sender_id,
                        gift_sends.c.creator_id,
                    )
                )
            }
        rows = []
        by_id: dict[str, Row] = {}
        for t in raw:
            m = t._mapping
            debit, credit = names.get(m["debit_account_id"]), names.get(m["credit_account_id"])
            if m["pending_id"] and (debit is None or credit is None):
                first = by_id[m["pending_id"]]  # a post or void names its pending's accounts
                debit, credit = first.debit, first.credit
            row = Row(
                m["id"],
                str(debit),
                str(credit),
                int(m["amount"]),
                m["asset"],
                m["code"],
                m["kind"],
                m["pending_id"],
                m["reverses_id"],
                datetime.fromtimestamp(m["created_at_us"] / 1e6, UTC).date().isoformat(),
            )
            rows.append(row)
            by_id[row.id] = row
        self.rows = rows
        self.by_id = by_id
        resolved = {r.pending_id: r for r in rows if r.pending_id}
        self.resolution = resolved  # pending id -> the post or void that ended it

    def balance(self, name: str) -> int:
        """Posted credits less posted debits."""
        posted = [r for r in self.rows if r.kind in ("posted", "post_pending")]
        return sum(r.amount for r in posted if r.credit == name) - sum(
            r.amount for r in posted if r.debit == name
        )

    def reserved(self, name: str) -> int:
        """What pending transfers not yet posted or voided hold back from ``name``."""
        return sum(
            r.amount
            for r in self.rows
            if r.kind == "pending" and r.debit == name and r.id not in self.resolution
        )

    def total(self, **match: Any) -> int:
        return sum(r.amount for r in self.select(**match))

    def select(self, **match: Any) -> list[Row]:
        return [r for r in self.rows if all(getattr(r, k) == v for k, v in match.items())]

    # -- gifts, net of reversals

    def gift_legs(self) -> list[tuple[Row, Row | None]]:
        """Each gift not reversed: its coins leg and its diamonds leg."""
        reversed_ids = {r.reverses_id for r in self.rows if r.reverses_id}
        legs = []
        # The viewer's coins leg; a gift's daily-cap leg (":s", the sender's day account) is
        # a COIN gift transfer too, but moves no coins of anyone's.
        for r in self.select(code="gift", asset="COIN", credit="platform:gifts_spent"):
            if r.id in reversed_ids:
                continue
            base = r.id.removesuffix(":c")
            legs.append((r, self.by_id.get(base + ":d")))
        return legs


def wallet_of(ledger: Ledger, user_id: int) -> dict[str, int]:
    me = f"user:{user_id}"
    return {
        "coins": ledger.balance(f"{me}:coins") - ledger.reserved(f"{me}:coins"),
        "coins_debt": -ledger.balance(f"{me}:coin_debt"),
        "diamonds": ledger.balance(f"{me}:diamonds") - ledger.reserved(f"{me}:diamonds"),
        "diamonds_reserved": ledger.reserved(f"{me}:diamonds"),
        "diamonds_debt": -ledger.balance(f"{me}:diamond_debt"),
    }


def floor_cents(diamonds: int) -> int:
    return diamonds * VALUE_MICROS // MICROS_PER_CENT


def largest_remainder(diamonds: list[int]) -> list[int]:
    """docs/economy.md, "Cents": each row floored, the cents left over one each to the rows
    with the largest fractions, the earlier row on a tie."""
    exact = [d * VALUE_MICROS for d in diamonds]  # in millionths of a dollar
    floors = [e // MICROS_PER_CENT for e in exact]
    left = floor_cents(sum(diamonds)) - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] % MICROS_PER_CENT), i))
    for i in order[:left]:
        floors[i] += 1
    return floors


# --- the evening ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def listening(app: Any) -> AsyncIterator[str]:
    """The in-process app (its lifespan already running) also on a loopback port, for the
    room socket, which the in-process transport cannot carry."""
    port = free_port()
    options = {**UVICORN_OPTIONS, "lifespan": "off", "log_level": "warning"}
    config = uvicorn.Config(app, host="127.0.0.1", port=port, **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), task
            await asyncio.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def put_package(client: httpx.AsyncClient, currency: str, coins: int, price: int) -> None:
    body = {"currency": currency, "coins": coins, "price_minor": price}
    r = await client.put("/v1/admin/coin-packages", json=body, headers=ADMIN)
    assert r.status_code == 200, r.text


async def buy(viewer: Person, currency: str, coins: int, key: str = "") -> dict[str, Any]:
    r = await viewer.client.get("/v1/coin-packages", params={"currency": currency})
    assert r.status_code == 200, r.text
    package = next(p for p in r.json() if p["coins"] == coins)
    price, shown = PACKAGES[(currency, coins)]
    # The figures the shop reads: the price at the currency's own scale.
    assert package["price_minor"] == price
    assert package["currency_exponent"] == EXPONENT[currency]
    assert package["price"] == shown == shown_price(currency, price)
    r = await viewer.post(
        "/v1/topups",
        {
            "package_id": package["id"],
            "currency": currency,
            "idempotency_key": f"{currency}{coins}{key}",
        },
    )
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    assert (order["amount_minor"], order["currency"]) == (price, currency)
    # The sandbox's checkout page shows what will be charged.
    session = order["checkout_url"].rsplit("/", 1)[1]
    page = await viewer.client.get(f"/sandbox/checkout/{session}")
    assert page.status_code == 200, page.text
    assert f"<dd>{html.escape(shown)}</dd>" in page.text, page.text
    await sandbox(viewer.client, order, "pay")
    return order


def token(person: Person) -> str:
    return person.auth["Authorization"].removeprefix("Bearer ")


async def gift(viewer: Person, stream: str, gift_id: str, count: int = 1) -> str:
    r = await viewer.gift(stream, gift_id, count=count)
    assert r.status_code == 201, r.text
    return str(r.json()["send_id"])


async def page(client: httpx.AsyncClient, person: Person, path: str) -> httpx.Response:
    """A page as ``person``'s browser gets it: the session in a cookie, never a bearer
    token (a client of its own: the shared one's jar holds the last sign-up's session)."""
    transport = httpx.ASGITransport(app=client.app)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url=str(client.base_url)) as browser:
        r = await browser.get(path, headers={"Cookie": f"gw_session={token(person)}"})
    assert r.status_code == 200, r.text
    return r


def boot_of(page: httpx.Response) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="boot">(.*?)</script>', page.text)
    assert found, page.text[:500]
    boot: dict[str, Any] = json.loads(found.group(1))
    return boot


async def test_one_evening_every_figure_shown_equals_the_ledger(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(
        payout_min_cents=100,
        payout_daily_cap_cents=DAILY_CAP_CENTS,
        allowed_hosts=["giftwave.test", "127.0.0.1"],  # and the room socket's loopback
    ) as client:
        app: Any = client.app  # type: ignore[attr-defined]
        economy = app_services(app).economy
        for (currency, coins), (price, _) in PACKAGES.items():
            if currency != "USD":  # USD's are the seeded list
                await put_package(client, currency, coins, price)
        ana, bo = await register(client, "creator"), await register(client, "creator")
        admin = await make_admin(client)
        us = await register(client, country="US")
        jp = await register(client, country="JP")
        kw = await register(client, country="KW")
        viewers = {"us": us, "jp": jp, "kw": kw}
        handles = {p.id: p.user["handle"] for p in (ana, bo, us, jp, kw)}

        # Top-ups in three currencies: 1,050 coins, 700 and 1,400.
        await buy(us, "USD", 700)
        us_small = await buy(us, "USD", 350)
        jp_order = await buy(jp, "JPY", 700)
        kw_order = await buy(kw, "KWD", 700)
        await buy(kw, "KWD", 700, key="again")

        # Ana's warm-up: 319 diamonds (159.5 cents), then her main stream with a goal.
        warm_up = await ana.go_live("Warm-up")
        await gift(us, warm_up, "corgi")  # 299
        await gift(us, warm_up, "rose", count=20)
        r = await ana.post(f"/v1/streams/{warm_up}/end")
        assert r.status_code == 200, r.text
        a = await ana.go_live("Late night piano")
        b = await bo.go_live("Corgi hour")
        r = await ana.client.put(
            f"/v1/streams/{a}/goal",
            json={"kind": "coins", "target": GOAL_COINS, "title": "New piano"},
            headers=ana.auth,
        )
        assert r.status_code == 200, r.text
        await gift(us, b, "swan")  # 699
        await gift(jp, a, "money_gun")  # 500
        await gift(jp, a, "rose")
        await gift(jp, b, "hand_hearts")  # 100
        disco = await gift(kw, a, "disco_ball")  # 1,000: the goal of 1,500 reached
        await gift(kw, b, "corgi")

        async with listening(app) as host:
            # A viewer in ana's room through what follows.
            url = await as_user(client, f"ws://{host}/v1/streams/{a}/ws", token(us))
            async with websockets.connect(url) as ws:
                room = Client(ws)
                await room.recv()

                # Ana asks for 1,640 diamonds ($8.20, the day's cap); bo for 400, rejected;
                # bo for 840 with a one-second review (settings allow a minute at least),
                # left to expire.
                r = await ana.post("/v1/payouts", {"diamonds": 1_640, "idempotency_key": "ana"})
                assert r.status_code == 201, r.text
                ana_payout = r.json()
                r = await bo.post("/v1/payouts", {"diamonds": 400, "idempotency_key": "bo-1"})
                assert r.status_code == 201, r.text
                r = await admin.post(f"/v1/admin/payouts/{r.json()['id']}/reject")
                assert r.status_code == 200, r.text
                expiring = await payout_quickly_reviewed(economy, bo.id, 841, "bo-2")
                assert expiring.diamonds == 840  # whole cents only: the odd diamond stays

                # The admin reverses kw's disco ball while ana's 1,640 wait in her payout: she
                # holds 180 more, so 820 become a diamond debt.
                r = await client.post(f"/v1/admin/gift-sends/{disco}/reverse", headers=ADMIN)
                assert r.status_code == 200, r.text
                receipt = r.json()
                assert receipt["diamonds_debt"] > 0, receipt
                # Approving settles the debt first, from the reservation; the rest is paid.
                r = await admin.post(f"/v1/admin/payouts/{ana_payout['id']}/approve")
                assert r.status_code == 200, r.text
                assert r.json()["status"] == "approved", r.json()

                # Partial refunds (USD, KWD) and a dispute (JPY), by the sandbox's webhooks.
                await sandbox(client, us_small, "refund", amount_minor=100)
                await sandbox(client, kw_order, "refund", amount_minor=1_550)
                await sandbox(client, jp_order, "dispute")

                # Bo's payout expires; at once the day's cap has room for another of 840.
                deadline = time.monotonic() + 10
                while (await bo.wallet())["diamonds_reserved"]:
                    assert time.monotonic() < deadline, "the payout never expired"
                    await asyncio.sleep(0.05)
                r = await bo.post("/v1/payouts", {"diamonds": 840, "idempotency_key": "bo-3"})
                assert r.status_code == 201, r.text

                ledger = Ledger(economy.db)
                # The approval settled the debt before paying: of the 1,640 reserved, 820
                # went to the debt and 820 ($4.10) were paid; nothing is owed.
                post = ledger.by_id[f"{PAYOUT_PREFIX}{ana_payout['id']}:post"]
                assert post.amount == 820
                assert wallet_of(ledger, ana.id)["diamonds_debt"] == 0
                # The reversal's receipt is its transfers; a replay answers the same.
                rev = [ledger.by_id.get(f"{disco}:rev:{k}") for k in ("c", "d", "dd")]
                assert [receipt[k] for k in RECEIPT] == [t.amount if t else 0 for t in rev]
                r = await client.post(f"/v1/admin/gift-sends/{disco}/reverse", headers=ADMIN)
                assert r.status_code == 200, r.text
                assert {k: r.json()[k] for k in RECEIPT} == {k: receipt[k] for k in RECEIPT}

                # The room: the viewer who was there, and one who joins now (the snapshot).
                await check_room(room, ledger, a, handles)
                url = await as_user(client, f"ws://{host}/v1/streams/{a}/ws", token(kw))
                async with websockets.connect(url) as late:
                    newcomer = Client(late)
                    await newcomer.recv()
                    await check_room(newcomer, ledger, a, handles)

        ledger = Ledger(economy.db)
        for name, viewer in viewers.items():
            assert await viewer.wallet() == wallet_of(ledger, viewer.id), name
        for creator in (ana, bo):
            assert await creator.wallet() == wallet_of(ledger, creator.id)
            await check_statement(creator, ledger)
        await check_payouts(client, ledger, handles)
        Rollup(economy.db).catch_up()
        await check_economy_report(client, ledger)
        await check_creator_reports(client, ledger, ana, [warm_up, a])
        await check_creator_reports(client, ledger, bo, [b])
        await check_pages(client, ledger, viewers, [ana, bo])


def board_of(ledger: Ledger, stream: str) -> dict[int, int]:
    coins: Counter[int] = Counter()
    for c, _ in ledger.gift_legs():
        stream_id, sender, _ = ledger.send_stream[c.id]
        if stream_id == stream:
            coins[sender] += c.amount
    return dict(coins)


def latest(room: Client, kind: str) -> dict[str, Any]:
    for frame in reversed(room.frames):
        for event in reversed(frame["events"]):
            if event["type"] == kind:
                return dict(event)
            if event["type"] == "snapshot":
                return dict(event[kind])
    raise AssertionError(f"no {kind} event")


async def check_room(room: Client, ledger: Ledger, stream: str, handles: dict[int, str]) -> None:
    """The room's board, totals and goal, as the viewer has them, equal the ledger's gifts."""
    board = board_of(ledger, stream)
    coins = sum(board.values())
    want = {
        "board": sorted(((handles[u], c) for u, c in board.items() if c), key=lambda x: -x[1]),
        "coins": coins,
        "goal": (coins, coins >= GOAL_COINS),
    }

    def now() -> dict[str, Any]:
        shown, target = latest(room, "leaderboard"), latest(room, "goal")
        return {
            "board": [(row["handle"], row["coins"]) for row in shown["top"]],
            "coins": shown["coins"],
            "goal": (target["progress"], target["reached"]),
        }

    deadline = time.monotonic() + 8
    while now() != want:
        assert time.monotonic() < deadline, f"the room shows {now()}, the ledger {want}"
        with contextlib.suppress(TimeoutError):
            await room.recv(max(0.05, deadline - time.monotonic()))


# --- statements and payouts -------------------------------------------------------------------


def statement_lines(ledger: Ledger, creator_id: int) -> dict[tuple[str, str], list[int]]:
    """(day, stream) -> [gifts, coins, diamonds] of the creator's gifts not reversed."""
    lines: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for c, d in ledger.gift_legs():
        stream, _, creator = ledger.send_stream[c.id]
        if creator != creator_id:
            continue
        line = lines[(c.day, stream)]
        line[0] += 1
        line[1] += c.amount
        line[2] += 0 if d is None else d.amount
    return dict(sorted(lines.items()))


def payout_status(ledger: Ledger, pending: Row) -> tuple[str, int]:
    """What the ledger did with a payout's reservation: its status and the cents it is worth
    (what was paid, for an approval)."""
    end = ledger.resolution.get(pending.id)
    if end is None:
        return "pending", floor_cents(pending.amount)
    if end.id.startswith("expire:"):
        return "expired", floor_cents(pending.amount)
    status = {":post": "approved", ":void": "rejected", ":settled": "failed"}[
        end.id[len(pending.id) :]
    ]
    return status, floor_cents(end.amount if status == "approved" else pending.amount)


def ledger_payouts(ledger: Ledger) -> dict[str, dict[str, Any]]:
    """Every payout the ledger reserved: id -> creator, diamonds, cents, status."""
    found = {}
    for row in ledger.select(code="payout", kind="pending"):
        status, cents = payout_status(ledger, row)
        found[row.id.removeprefix(PAYOUT_PREFIX)] = {
            "creator": int(row.debit.split(":")[1]),
            "diamonds": row.amount,
            "amount_minor": cents,
            "status": status,
        }
    return found


def paid_out(ledger: Ledger, creator_id: int) -> tuple[int, int]:
    """Diamonds the ledger paid out to the creator (posted to the platform's payouts), and
    their worth."""
    posted = [
        r
        for r in ledger.select(code="payout", kind="post_pending")
        if r.debit == f"user:{creator_id}:diamonds"
    ]
    diamonds = sum(r.amount for r in posted)
    return diamonds, floor_cents(diamonds)


async def check_statement(creator: Person, ledger: Ledger) -> None:
    lines = statement_lines(ledger, creator.id)
    gifts, coins, diamonds = (sum(line[i] for line in lines.values()) for i in range(3))
    r = await creator.get("/v1/creators/me/statement")
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["totals"] == {
        "gifts": gifts,
        "coins": coins,
        "diamonds": diamonds,
        "cash_value_cents": floor_cents(diamonds),
    }
    streams: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    days: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (day, stream), line in lines.items():
        for i in range(3):
            streams[stream][i] += line[i]
            days[day][i] += line[i]
    for rows, key, shown in ((streams, "stream_id", s["by_stream"]), (days, "day", s["by_day"])):
        cents = largest_remainder([v[2] for v in rows.values()])
        assert [
            (row[key], row["gifts"], row["coins"], row["diamonds"], row["cash_value_cents"])
            for row in shown
        ] == [(k, *v, c) for (k, v), c in zip(rows.items(), cents, strict=True)]
        assert sum(row["cash_value_cents"] for row in shown) == s["totals"]["cash_value_cents"]

    # The effective share: what the gifts earned per coin, against the dearest and the
    # cheapest coin (the default currency's packages).
    r = await creator.client.get("/v1/coin-packages", params={"currency": "USD"})
    per_coin = [p["price_minor"] / p["coins"] for p in r.json()]
    cents_per_coin = diamonds / coins * VALUE_MICROS / MICROS_PER_CENT
    assert (s["share_percent_low"], s["share_percent_high"]) == (
        round(100 * cents_per_coin / max(per_coin), 1),
        round(100 * cents_per_coin / min(per_coin), 1),
    )

    wallet = wallet_of(ledger, creator.id)
    assert (s["balance_diamonds"], s["reserved_diamonds"]) == (
        wallet["diamonds"],
        wallet["diamonds_reserved"],
    )
    by_status: dict[str, int] = Counter()
    for p in ledger_payouts(ledger).values():
        if p["creator"] == creator.id:
            by_status[f"{p['status']}_diamonds"] += p["diamonds"]
            by_status[f"{p['status']}_cents"] += p["amount_minor"]
    assert s["payouts"] == dict(by_status)
    assert s["paid_out_diamonds"] == paid_out(ledger, creator.id)[0]

    # The CSV: one line per day and stream, the cents shared out the same way, then the
    # JSON's totals.
    r = await creator.get("/v1/creators/me/statement", params={"format": "csv"})
    assert r.status_code == 200, r.text
    *rows, total = csv.DictReader(io.StringIO(r.text))
    cents = largest_remainder([v[2] for v in lines.values()])
    assert [
        (
            (row["day"], row["stream_id"]),
            [int(row["gifts"]), int(row["coins"]), int(row["diamonds"])],
            row["cash_value_usd"],
        )
        for row in rows
    ] == [(k, v, usd(c)) for (k, v), c in zip(lines.items(), cents, strict=True)]
    t = floor_cents(diamonds)
    assert (total["day"], total["gifts"], total["coins"], total["diamonds"]) == (
        "total",
        str(gifts),
        str(coins),
        str(diamonds),
    )
    assert total["cash_value_usd"] == usd(t)


async def check_payouts(client: httpx.AsyncClient, ledger: Ledger, handles: dict[int, str]) -> None:
    """The admin's lists, each status: what the ledger reserved, paid or voided."""
    expected = ledger_payouts(ledger)
    shown = {}
    for status in ("requested", "pending", "approved", "rejected", "expired", "failed"):
        r = await client.get("/v1/admin/payouts", params={"status": status}, headers=ADMIN)
        assert r.status_code == 200, r.text
        for p in r.json():
            assert p["status"] == status, p
            shown[p["id"]] = {
                "creator": p["creator_id"],
                "diamonds": p["diamonds"],
                "amount_minor": p["amount_minor"],
                "status": p["status"],
            }
            assert p["creator_handle"] == handles[p["creator_id"]]
    assert shown == expected
    assert sorted(p["status"] for p in expected.values()) == [
        "approved",
        "expired",
        "pending",
        "rejected",
    ]


# --- the analytics ----------------------------------------------------------------------------


def net_by(ledger: Ledger, who: int) -> dict[int, int]:
    """Coins of gifts not reversed, by sender (who=1) or by creator (who=2)."""
    coins: Counter[int] = Counter()
    for c, _ in ledger.gift_legs():
        coins[ledger.send_stream[c.id][who]] += c.amount
    return {k: v for k, v in coins.items() if v > 0}


def events(rows: list[Row]) -> int:
    """A clawback is what was taken and what became a debt: one event, up to two transfers
    (``…:refund:<coins>:take`` and ``…:debt``)."""
    return len({r.id.rsplit(":", 1)[0] for r in rows})


async def check_economy_report(client: httpx.AsyncClient, ledger: Ledger) -> None:
    r = await client.get("/v1/admin/analytics/economy", headers=ADMIN)
    assert r.status_code == 200, r.text
    e = r.json()
    issued, spent = "platform:coins_issued", "platform:gifts_spent"
    gifted = ledger.total(code="gift", asset="COIN", credit=spent)
    reversed_coins = ledger.total(code="refund", asset="COIN", debit=spent)
    diamonds = ledger.total(code="gift", asset="DIAMOND") - ledger.total(
        code="refund", asset="DIAMOND"
    )
    paid_out = ledger.total(code="payout", kind="post_pending")
    users = {int(r.debit.split(":")[1]) for r in ledger.rows if r.debit.startswith("user:")}
    users |= {int(r.credit.split(":")[1]) for r in ledger.rows if r.credit.startswith("user:")}
    holders = sum(
        ledger.balance(f"user:{u}:coins") + ledger.balance(f"user:{u}:coin_debt") for u in users
    )
    creators_hold = sum(
        ledger.balance(f"user:{u}:diamonds") + ledger.balance(f"user:{u}:diamond_debt")
        for u in users
    )
    gifters = net_by(ledger, 1)
    refunds = [r for r in ledger.select(code="refund", asset="COIN") if r.credit == issued]
    chargebacks = ledger.select(code="chargeback", asset="COIN")
    topups = ledger.select(code="topup", asset="COIN")
    headline = {
        "coins_sold": sum(r.amount for r in topups),
        "coins_granted": ledger.total(code="adjustment", asset="COIN", debit=issued),
        "coins_spent": gifted - reversed_coins,
        "coins_refunded": sum(r.amount for r in refunds),
        "coins_charged_back": sum(r.amount for r in chargebacks),
        "coins_reversed": reversed_coins,
        "coins_outstanding": holders,
        "diamonds_earned": diamonds,
        "diamonds_paid_out": paid_out,
        "diamonds_outstanding": creators_hold,
        "topups": len(topups),
        "refunds": events(refunds),
        "chargebacks": events(chargebacks),
        "gifters": len(gifters),
        "gifted_coins": sum(gifters.values()),
        "creators": len(net_by(ledger, 2)),
    }
    assert {k: e[k] for k in headline} == headline
    assert diamonds - paid_out == creators_hold  # the ledger agrees with itself
    assert e["top1pct_share"] == max(gifters.values()) / sum(gifters.values())

    # The per-day rows, net of reversals like the headline (one UTC day this evening).
    days: dict[str, Counter[str]] = defaultdict(Counter)
    for row in topups:
        days[row.day].update({"coins_sold": row.amount, "topups": 1})
    for c, d in ledger.gift_legs():
        days[c.day].update(
            {"coins_spent": c.amount, "gifts": 1, "diamonds_earned": d.amount if d else 0}
        )
    for row in ledger.select(code="payout", kind="post_pending"):
        days[row.day]["diamonds_paid_out"] += row.amount
    for row in ledger.select(code="refund", asset="COIN", debit=spent):
        days[row.day]["coins_reversed"] += row.amount
    columns = ("coins_sold", "coins_spent", "diamonds_earned", "diamonds_paid_out", "topups")
    assert [
        {k: row[k] for k in ("day", *columns, "gifts", "coins_reversed")} for row in e["days"]
    ] == [
        {"day": day, **{k: n[k] for k in (*columns, "gifts", "coins_reversed")}}
        for day, n in sorted(days.items())
    ]
    for column in ("coins_spent", "diamonds_earned", "diamonds_paid_out", "coins_reversed"):
        assert sum(row[column] for row in e["days"]) == e[column], column


async def check_creator_reports(
    client: httpx.AsyncClient, ledger: Ledger, creator: Person, streams: list[str]
) -> None:
    mine = [(c, d) for c, d in ledger.gift_legs() if ledger.send_stream[c.id][2] == creator.id]
    by_gifter: Counter[int] = Counter()
    for c, _ in mine:
        by_gifter[ledger.send_stream[c.id][1]] += c.amount
    coins = sum(c.amount for c, _ in mine)
    r = await creator.get("/v1/creators/me/analytics")
    assert r.status_code == 200, r.text
    me = r.json()
    assert (me["gifts"], me["coins"], me["diamonds"], me["gifters"]) == (
        len(mine),
        coins,
        sum(d.amount for _, d in mine if d),
        len(by_gifter),
    )
    assert me["average_gift_coins"] == round(coins / len(mine), 2)
    assert me["top1_share"] == max(by_gifter.values()) / coins
    days: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for c, _ in mine:
        days[c.day][0] += 1
        days[c.day][1] += c.amount
    assert [(d["day"], d["gifts"], d["coins"]) for d in me["days"]] == [
        (day, *n) for day, n in sorted(days.items())
    ]
    for stream in streams:
        here = [(c, d) for c, d in mine if ledger.send_stream[c.id][0] == stream]
        gifters: Counter[int] = Counter()
        for c, _ in here:
            gifters[ledger.send_stream[c.id][1]] += c.amount
        r = await creator.get(f"/v1/streams/{stream}/analytics")
        assert r.status_code == 200, r.text
        s = r.json()
        assert (s["gifts"], s["coins"], s["diamonds"], s["unique_gifters"]) == (
            len(here),
            sum(c.amount for c, _ in here),
            sum(d.amount for _, d in here if d),
            len(gifters),
        )
        assert s["top1_share"] == max(gifters.values()) / sum(gifters.values())


# --- the pages --------------------------------------------------------------------------------


def payment_of(order: dict[str, Any]) -> str:
    """The sandbox's payment for an order: derived from its checkout session with the webhook
    secret (payments/sandbox.py), so the ledger's ids can be matched to the buyer's list."""
    session = order["checkout_url"].rsplit("/", 1)[1].split("?")[0]
    mac = hmac.new(SANDBOX_SECRET.encode(), session.encode(), hashlib.sha256).hexdigest()
    return "pi_sb_" + mac[:24]


def order_figures(order: dict[str, Any]) -> tuple[str, str, int, int, str]:
    return (
        payment_of(order),
        order["currency"],
        order["coins"],
        order["amount_minor"],
        order["status"],
    )


def ledger_orders(
    ledger: Ledger, user_id: int, currency: str
) -> list[tuple[str, str, int, int, str]]:
    """Each payment of the user's: its coins and money, and what refunds and disputes did."""
    found = []
    for row in ledger.select(code="topup", asset="COIN", credit=f"user:{user_id}:coins"):
        payment = row.id.removeprefix("topup:sandbox:")
        fiat = ledger.by_id[row.id + ":fiat"]
        assert fiat.asset == currency
        back = [r for r in ledger.rows if r.id.startswith(row.id + ":fiat:")]
        given_back = sum(r.amount for r in back)
        if any(r.code == "chargeback" for r in back):
            status = "disputed"
        elif given_back:
            status = "refunded" if given_back == fiat.amount else "partly_refunded"
        else:
            status = "paid"
        found.append((payment, fiat.asset, row.amount, fiat.amount, status))
    return found


def usd(cents: int) -> str:
    return f"{cents // 100:,}.{cents % 100:02d}"


def dollars(cents: int) -> str:
    return "$" + usd(cents)


async def check_pages(
    client: httpx.AsyncClient, ledger: Ledger, viewers: dict[str, Person], creators: list[Person]
) -> None:
    for name, viewer in viewers.items():
        currency = {"us": "USD", "jp": "JPY", "kw": "KWD"}[name]
        boot = boot_of(await page(client, viewer, "/shop"))
        # The shop's script formats the packages and orders in the viewer's currency with
        # these digits.
        assert boot["currency"] == currency
        digits = boot["currency_exponents"]
        assert {c: digits.get(c, 2) for c in EXPONENT} == EXPONENT
        # The orders it lists: what the ledger's fiat legs say was paid and given back.
        r = await viewer.get("/v1/topups")
        assert r.status_code == 200, r.text
        assert sorted(order_figures(o) for o in r.json()) == sorted(
            ledger_orders(ledger, viewer.id, currency)
        )

    for creator in creators:
        await check_studio(client, ledger, creator)


async def check_studio(client: httpx.AsyncClient, ledger: Ledger, creator: Person) -> None:
    """The studio's earnings page: the statement's totals and streams, the payouts, the
    balance."""
    lines = statement_lines(ledger, creator.id)
    diamonds = sum(line[2] for line in lines.values())
    payouts = [p for p in ledger_payouts(ledger).values() if p["creator"] == creator.id]
    wallet = wallet_of(ledger, creator.id)
    shown = (await page(client, creator, "/studio/earnings")).text
    assert f'id="total-diamonds" data-diamonds="{diamonds}"' in shown
    assert f"<bdi>{dollars(floor_cents(diamonds))}</bdi>" in shown
    pending = [p for p in payouts if p["status"] in ("pending", "requested")]
    assert f'<bdi id="pending-diamonds">{sum(p["diamonds"] for p in pending):,}</bdi>' in shown
    pending_cents = sum(p["amount_minor"] for p in pending)
    assert f'<bdi id="pending-cash">{dollars(pending_cents)}</bdi>' in shown
    # Paid out: what the ledger posted to the platform's payouts, worth its cents (before, the
    # diamonds reserved: 1,640 "paid" for $4.10 when 820 of them had settled a debt).
    paid_diamonds, paid_cents = paid_out(ledger, creator.id)
    assert f'<bdi id="paid-diamonds">{paid_diamonds:,}</bdi>' in shown
    assert f'<bdi id="paid-cash">{dollars(paid_cents)}</bdi>' in shown
    assert f'<bdi id="available-diamonds">{wallet["diamonds"]:,}</bdi>' in shown
    # By stream: each row's cells, the cents shared out of the total.
    streams: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (_, stream), line in lines.items():
        for i in range(3):
            streams[stream][i] += line[i]
    table = shown[shown.index('<table id="by-stream">') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r'<tr data-stream="([^"]+)">.*?</th>(.*?)</tr>', table, re.S)
    cells = [(sid, re.findall(r"<td>(.*?)</td>", tds)) for sid, tds in rows]
    cents = largest_remainder([v[2] for v in streams.values()])
    assert cells == [
        (sid, [f"{v[0]:,}", f"{v[1]:,}", f"{v[2]:,}", dollars(c)])
        for (sid, v), c in zip(streams.items(), cents, strict=True)
    ]

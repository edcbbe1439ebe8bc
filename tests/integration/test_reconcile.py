"""`giftwave reconcile` against the sandbox providers, on SQLite and PostgreSQL, run as an
operator runs it (its own process): books kept in step by the sandbox pages and webhooks are
clean (exit 0); each kind of mismatch injected into the sandbox's records or the ledger's is
reported (exit 1) and nothing else is; --since filters; a bad date or provider is exit 2; the
admin console's route shows the last run, to admins only; runs are stored bounded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from economy_client import (
    ADMIN,
    AppFactory,
    Person,
    assert_problem,
    economy_app,
    make_admin,
    register,
    sandbox,
)
from serverproc import giftwave_env, run_cli
from sqlalchemy import Engine, func, insert, select, update
from test_economy_webhooks import open_order
from test_payouts_provider import PROVIDER, approved_payout, earn, onboard, wait_for

from giftwave.api.state import app_services
from giftwave.clock import now_us
from giftwave.db.tables import (
    reconcile_runs,
    sandbox_payments,
    sandbox_payout_transfers,
    transfers,
)
from giftwave.db.urls import DatabaseUrl
from giftwave.economy.reconcile_runs import RUNS_KEPT, STORED_MISMATCHES, last_run
from giftwave.economy.reconcile_runs import reconcile as run_reconcile
from giftwave.ledger.queries import first_seq_at
from giftwave.payments.base import PaymentEventKind
from giftwave.payments.records import Record, RecordKind
from giftwave.payments.sandbox import SandboxProvider

__all__ = ["economy_app"]

RUN_KEYS = {
    "provider",
    "since_us",
    "started_at_us",
    "finished_at_us",
    "clean",
    "records",
    "counts",
    "mismatch_count",
    "mismatches",
    "truncated",
}


def payments(client: httpx.AsyncClient) -> SandboxProvider:
    provider = app_services(client.app).economy.topups.provider  # type: ignore[attr-defined]
    assert isinstance(provider, SandboxProvider)
    return provider


def session_of(order: dict[str, Any]) -> str:
    return str(order["checkout_url"].rsplit("/", 1)[1].split("?", 1)[0])


def change(client: httpx.AsyncClient, table: Any, where: Any, **values: Any) -> None:
    """An edit of the sandbox's own records: what the provider says, changed behind us."""
    db = app_services(client.app).db  # type: ignore[attr-defined]
    with db.begin() as conn:
        assert conn.execute(update(table).where(where).values(**values)).rowcount == 1


def reconcile(db_url: DatabaseUrl, *args: str) -> tuple[int, str, str]:
    env = giftwave_env(db_url)
    done = run_cli(["reconcile", "--provider", "sandbox", *args], env)
    return done.returncode, done.stdout, done.stderr


def reconcile_json(db_url: DatabaseUrl, *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = reconcile(db_url, "--json", *args)
    assert code in (0, 1), out + err
    return code, dict(json.loads(out))


async def clean_books(client: httpx.AsyncClient) -> dict[str, Any]:
    """Payments paid, partly refunded and disputed, a payout paid and one returned: all
    through the sandbox's pages and webhooks, so both sides agree."""
    viewer, admin = await register(client), await make_admin(client)
    paid = await viewer.buy(700)
    refunded = await viewer.buy(700)
    await sandbox(client, refunded, "refund", amount_minor=100)
    disputed = await viewer.buy(700)
    await sandbox(client, disputed, "dispute")
    pays, fails = await register(client, "creator"), await register(client, "creator")
    for creator, bank in ((pays, "pays"), (fails, "fails")):
        await earn(client, creator)
        await onboard(client, creator, "approve", bank)
    paid_out = await approved_payout(client, pays, admin)
    await wait_for(pays, paid_out, "paid")
    returned = await approved_payout(client, fails, admin)
    await wait_for(fails, returned, "returned")
    return {"paid": paid, "returned": returned, "viewer": viewer}


async def test_books_in_step_are_clean_and_each_injected_mismatch_is_reported(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(**PROVIDER) as client:
        books = await clean_books(client)
        code, run = reconcile_json(db_url)
        assert code == 0, run
        assert run["clean"] is True
        assert run["mismatches"] == []
        # 2 earners' + 3 viewer's top-ups, 1 refund, 1 dispute, 2 payouts: on both sides.
        assert run["records"] == {"ledger": 9, "provider": 9}

        provider = payments(client)
        viewer: Person = books["viewer"]
        # 1. Credited, but the provider has no such payment (a webhook it never sent).
        other = await register(client)
        ghost = await open_order(other)
        await provider.deliver(
            provider.event_payload(
                PaymentEventKind.SUCCEEDED,
                session_of(ghost),
                ghost["id"],
                ghost["amount_minor"],
                "USD",
            )
        )
        assert await other.coins() == 700
        # 2. Paid at the provider, never credited (its webhook never arrived).
        lost = await open_order(viewer)
        await provider.record(
            PaymentEventKind.SUCCEEDED, session_of(lost), lost["id"], lost["amount_minor"], "USD"
        )
        # 3. and 4. The provider's records say another amount, another currency.
        amount, currency = await viewer.buy(700), await viewer.buy(700)
        pid = {
            name: provider.payment_id(session_of(order))
            for name, order in [
                ("ghost", ghost),
                ("lost", lost),
                ("amount", amount),
                ("currency", currency),
            ]
        }
        change(client, sandbox_payments, sandbox_payments.c.payment_id == pid["amount"],
               amount_minor=amount["amount_minor"] + 1)  # fmt: skip
        change(client, sandbox_payments, sandbox_payments.c.payment_id == pid["currency"],
               currency="EUR")  # fmt: skip
        # 5. Refunded at the provider, never clawed back.
        unclawed = await viewer.buy(700)
        pid["unclawed"] = provider.payment_id(session_of(unclawed))
        await provider.record(
            PaymentEventKind.REFUNDED,
            session_of(unclawed),
            unclawed["id"],
            unclawed["amount_minor"],
            "USD",
        )
        # 6. The provider says it paid a payout the ledger returned.
        returned = books["returned"]
        change(client, sandbox_payout_transfers,
               sandbox_payout_transfers.c.idempotency_key == returned, status="paid")  # fmt: skip

        code, run = reconcile_json(db_url)
        assert code == 1
        assert set(run) == RUN_KEYS
        found = {(m["mismatch"], m["kind"], m["reference"]) for m in run["mismatches"]}
        assert found == {
            ("missing_at_provider", "topup", pid["ghost"]),
            ("missing_in_ledger", "topup", pid["lost"]),
            ("amount_differs", "topup", pid["amount"]),
            ("currency_differs", "topup", pid["currency"]),
            ("state_differs", "topup", pid["unclawed"]),
            ("missing_in_ledger", "refund", pid["unclawed"]),
            ("state_differs", "payout", returned),
        }
        assert run["counts"] == {
            "missing_at_provider": 1,
            "missing_in_ledger": 2,
            "currency_differs": 1,
            "amount_differs": 1,
            "state_differs": 2,
        }
        assert (run["mismatch_count"], run["clean"], run["truncated"]) == (7, False, False)
        assert run["provider"] == "sandbox"
        by_ref = {(m["kind"], m["reference"], m["mismatch"]): m for m in run["mismatches"]}
        amount_line = by_ref[("topup", pid["amount"], "amount_differs")]
        price = amount["amount_minor"]
        assert {k: v for k, v in amount_line["ledger"].items() if k != "at_us"} == {
            "amount_minor": price,
            "currency": "USD",
            "state": "paid",
        }
        assert amount_line["provider"]["amount_minor"] == price + 1
        payout_line = by_ref[("payout", returned, "state_differs")]
        assert (payout_line["ledger"]["state"], payout_line["provider"]["state"]) == (
            "returned",
            "paid",
        )
        assert by_ref[("topup", pid["unclawed"], "state_differs")]["provider"]["state"] == (
            "refunded"
        )

        # The same as text, one line per mismatch and a verdict.
        code, out, _ = reconcile(db_url)
        assert code == 1
        lines = out.strip().splitlines()
        assert len(lines) == 8
        assert (
            f"MISMATCH amount_differs      topup   {pid['amount']}: ledger {price} USD paid, "
            f"provider {price + 1} USD paid"
        ) in lines
        assert lines[-1].startswith("reconcile sandbox: 7 mismatch(es)")

        # The admin console's route shows that last run.
        r = await client.get("/v1/admin/reconciliation", headers=ADMIN)
        assert r.status_code == 200, r.text
        last = r.json()["last_run"]
        assert last["mismatch_count"] == 7
        assert last["mismatches"] == run["mismatches"]


async def test_since_filters_and_bad_input_is_exit_2(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app() as client:
        viewer = await register(client)
        order = await open_order(viewer)
        await payments(client).record(
            PaymentEventKind.SUCCEEDED, session_of(order), order["id"], order["amount_minor"], "USD"
        )
    today = datetime.now(UTC).date()
    code, run = reconcile_json(db_url, "--since", today.isoformat())
    assert (code, run["mismatch_count"], run["records"]) == (1, 1, {"ledger": 0, "provider": 1})
    tomorrow = (today + timedelta(days=1)).isoformat()
    code, run = reconcile_json(db_url, "--since", tomorrow)
    assert (code, run["clean"], run["records"]) == (0, True, {"ledger": 0, "provider": 0})
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert reconcile_json(db_url, "--since", soon)[0] == 0
    code, _, _ = reconcile(db_url, "--since", "2020-01-01T00:00:00+00:00")
    assert code == 1
    assert reconcile(db_url)[0] == 1  # the default window: the last 30 days

    for bad in ("yesterday", "2026-13-01", "2026-12-01T10:00:00", "9" * 500):
        code, out, err = reconcile(db_url, "--since", bad)
        assert (code, out) == (2, ""), err
        assert "--since takes a date" in err
        assert "9" * 100 not in err  # a long argument is not echoed whole
    done = run_cli(["reconcile", "--provider", "paypal"], giftwave_env(db_url))
    assert done.returncode == 2
    assert "paypal" in done.stderr
    env = giftwave_env(db_url)
    done = run_cli(["reconcile", "--provider", "stripe"], env)  # no API key configured
    assert done.returncode == 2
    assert "GIFTWAVE_STRIPE_API_KEY" in done.stderr


async def test_the_last_run_is_for_admins_only(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app() as client:
        r = await client.get("/v1/admin/reconciliation", headers=ADMIN)
        assert r.json() == {"last_run": None}
        assert reconcile(db_url)[0] == 0
        viewer, creator = await register(client), await register(client, "creator")
        admin = await make_admin(client)
        r = await admin.get("/v1/admin/reconciliation")
        assert r.status_code == 200
        assert r.json()["last_run"]["clean"] is True
        for headers, status, code in [
            ({}, 401, "unauthorized"),
            ({"Authorization": "Bearer forged"}, 401, "unauthorized"),
            (viewer.auth, 403, "admin_required"),
            (creator.auth, 403, "admin_required"),
        ]:
            r = await client.get("/v1/admin/reconciliation", headers=headers)
            assert_problem(r, status, code)
            assert "mismatch" not in r.text


class ListedRecords:
    """A provider whose records are a list: what the command stores, whatever they are."""

    name = "sandbox"

    def __init__(self, records: list[Record]) -> None:
        self._records = records

    async def records(self, since_us: int) -> list[Record]:
        return [r for r in self._records if r.at_us >= since_us]


async def test_runs_are_stored_bounded(sa_engine: Engine) -> None:
    at_us = now_us()
    many = [
        Record(RecordKind.TOPUP, f"pi_{n:04d}", 100, "USD", "paid", at_us)
        for n in range(STORED_MISMATCHES + 50)
    ]
    run, mismatches = await run_reconcile(sa_engine, ListedRecords(many), at_us - 1)
    assert len(mismatches) == run.mismatch_count == STORED_MISMATCHES + 50
    stored = last_run(sa_engine)
    assert stored is not None
    shown = stored.as_dict()
    assert (shown["mismatch_count"], len(shown["mismatches"]), shown["truncated"]) == (
        STORED_MISMATCHES + 50,
        STORED_MISMATCHES,
        True,
    )
    assert shown["mismatches"][0]["reference"] == "pi_0000"
    assert shown == run.as_dict()

    for _ in range(RUNS_KEPT + 2):
        await run_reconcile(sa_engine, ListedRecords([]), at_us)
    with sa_engine.connect() as conn:
        kept = conn.execute(select(func.count()).select_from(reconcile_runs)).scalar_one()
    assert kept == RUNS_KEPT
    newest = last_run(sa_engine)
    assert newest is not None
    assert newest.clean


def test_the_window_starts_at_the_first_transfer_of_its_time(sa_engine: Engine) -> None:
    with sa_engine.begin() as conn:
        assert first_seq_at(conn, 0) == 1  # an empty ledger
        # seq 5, 6, 8, 9, 12 (gaps are no matter) committed at 100, 200, 200, 300, 400.
        for seq, at_us in [(5, 100), (6, 200), (8, 200), (9, 300), (12, 400)]:
            conn.execute(
                insert(transfers).values(
                    seq=seq,
                    id=f"t{seq}",
                    debit_account_id=1,
                    credit_account_id=2,
                    amount=1,
                    asset="COIN",
                    code="gift",
                    kind="single",
                    timeout_s=0,
                    batch_seq=seq,
                    created_at_us=at_us,
                )
            )
        rows = [(5, 100), (6, 200), (8, 200), (9, 300), (12, 400)]
        for at_us in (0, 100, 101, 200, 201, 400, 401):
            start = first_seq_at(conn, at_us)
            assert [seq for seq, _ in rows if seq >= start] == [
                seq for seq, t in rows if t >= at_us
            ], at_us
        assert first_seq_at(conn, 401) == 13  # one past the last

"""The sandbox payout provider's webhook rules (signature, staleness, shape), its onboarding
links, the pure rules that turn its reports into giftwave's states, and a payout's amount in
the payee's currency, without a database or a server."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from sqlalchemy import create_engine

from giftwave.config import Settings
from giftwave.economy.fx import FxRateMissing, FxTable
from giftwave.economy.payees import PayeeState, state_of
from giftwave.economy.payout_transfers import fold
from giftwave.economy.payouts import PayoutStatus
from giftwave.payments.base import IgnoredEvent, WebhookRejected
from giftwave.payments.payout_base import (
    PayeeAccount,
    PayeeAccountUpdated,
    TransferEvent,
    TransferEventKind,
)
from giftwave.payments.sandbox_payouts import SandboxPayoutProvider
from giftwave.payments.signing import SIGNATURE_HEADER, signature_header

SECRET = "whsec_unit"
TOLERANCE_S = 300
PAID = orjson.dumps(
    {
        "id": "evt_1",
        "type": "transfer.paid",
        "data": {
            "transfer_id": "tr_sb_1",
            "payout_id": "po_1",
            "amount_minor": 250,
            "currency": "usd",
            "reason": None,
        },
    }
)


@pytest.fixture
def provider() -> SandboxPayoutProvider:
    # Nothing here touches the store or the network: parsing and links are pure.
    return SandboxPayoutProvider(
        db=create_engine("sqlite://"),
        secret=SECRET,
        tolerance_s=TOLERANCE_S,
        client=httpx.AsyncClient(),
        webhook_url="http://127.0.0.1:9/none",
    )


def signed(body: bytes, secret: str = SECRET, at_s: int | None = None) -> dict[str, str]:
    return {SIGNATURE_HEADER.lower(): signature_header(secret, body, timestamp_s=at_s)}


def test_a_signed_transfer_event_is_read(provider: SandboxPayoutProvider) -> None:
    event = provider.parse_webhook(PAID, signed(PAID))
    assert event == TransferEvent(
        "sandbox", "evt_1", TransferEventKind.PAID, "tr_sb_1", "po_1", 250, "USD", None
    )


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_signature"),
        (signed(PAID, secret="whsec_other"), "bad_signature"),
        (signed(PAID + b" "), "bad_signature"),  # signed another body
        # Signed when the tests are collected, minutes before some run: far outside, not 5 s.
        (signed(PAID, at_s=int(time.time()) - TOLERANCE_S - 3600), "stale_webhook"),
        (signed(PAID, at_s=int(time.time()) + TOLERANCE_S + 3600), "stale_webhook"),
        ({SIGNATURE_HEADER.lower(): "v1=deadbeef"}, "malformed_signature"),
    ],
)
def test_forged_stale_or_unsigned_deliveries_are_rejected(
    provider: SandboxPayoutProvider, headers: dict[str, str], code: str
) -> None:
    with pytest.raises(WebhookRejected) as raised:
        provider.parse_webhook(PAID, headers)
    assert raised.value.code == code


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"id": "e", "type": "transfer.paid"}',
        b'{"id": "e", "type": "transfer.paid", "data": {"transfer_id": "t"}}',
        b'{"id": "e", "type": "transfer.paid", "data": {"transfer_id": "t", "payout_id": "p",'
        b' "amount_minor": -1, "currency": "USD"}}',
        b'{"id": "e", "type": "transfer.paid", "data": {"transfer_id": "t", "payout_id": "p",'
        b' "amount_minor": true, "currency": "USD"}}',
        b'{"id": "e", "type": "account.updated", "data": {"account_id": "a",'
        b' "details_submitted": true, "payouts_enabled": true, "requirements_due": [],'
        b' "disabled_reason": null, "version": 0}}',
        b'{"id": "", "type": "account.updated", "data": {}}',
    ],
)
def test_malformed_events_are_rejected(provider: SandboxPayoutProvider, body: bytes) -> None:
    with pytest.raises(WebhookRejected) as raised:
        provider.parse_webhook(body, signed(body))
    assert raised.value.code == "malformed_webhook"


def test_unknown_transfer_kinds_are_rejected_and_other_events_ignored(
    provider: SandboxPayoutProvider,
) -> None:
    odd = b'{"id": "e", "type": "transfer.lost", "data": {}}'
    with pytest.raises(WebhookRejected) as raised:
        provider.parse_webhook(odd, signed(odd))
    assert raised.value.code == "unknown_event"
    other = b'{"id": "e", "type": "balance.available", "data": {}}'
    assert isinstance(provider.parse_webhook(other, signed(other)), IgnoredEvent)


def test_an_account_report_round_trips(provider: SandboxPayoutProvider) -> None:
    account = PayeeAccount("acct_sb_1", True, False, ("external_account",), None, 3)
    body = provider.account_payload(account)
    event = provider.parse_webhook(body, signed(body))
    assert isinstance(event, PayeeAccountUpdated)
    assert event.account == account


async def test_onboarding_links_are_signed_and_expire(provider: SandboxPayoutProvider) -> None:
    url = await provider.onboarding_link("acct_sb_1", "http://giftwave.test", "/studio/earnings")
    token = url.split("/sandbox/onboarding/", 1)[1].split("?", 1)[0]
    assert provider.account_for_link(token) == "acct_sb_1"
    assert provider.account_for_link(token, now_s=time.time() + 2 * 3600) is None  # expired
    account, expires, mac = token.split(".")
    assert provider.account_for_link(f"acct_sb_2.{expires}.{mac}") is None  # another account
    assert provider.account_for_link(f"{account}.{int(expires) + 9999}.{mac}") is None
    assert provider.account_for_link("acct_sb_1") is None
    assert provider.account_for_link("x" * 500) is None


@pytest.mark.parametrize(
    ("account", "state"),
    [
        (PayeeAccount("a", False, False, ("document",), None, 1), PayeeState.PENDING),
        (PayeeAccount("a", True, True, (), None, 2), PayeeState.VERIFIED),
        (PayeeAccount("a", True, False, (), None, 2), PayeeState.RESTRICTED),
        (PayeeAccount("a", True, True, ("more",), None, 2), PayeeState.RESTRICTED),
        (PayeeAccount("a", True, True, (), "rejected.fraud", 2), PayeeState.DISABLED),
    ],
)
def test_a_report_decides_the_payee_state(account: PayeeAccount, state: PayeeState) -> None:
    assert state_of(account) is state


def test_a_failure_or_reversal_wins_over_paid_in_any_order() -> None:
    paid = (TransferEventKind.PAID, None)
    failed = (TransferEventKind.FAILED, "account_closed")
    reversed_ = (TransferEventKind.REVERSED, "bank_recall")
    assert fold([]) == (PayoutStatus.PROCESSING, None)
    assert fold([paid, paid]) == (PayoutStatus.PAID, None)
    assert fold([paid, failed]) == (PayoutStatus.RETURNED, "account_closed")
    assert fold([failed, paid]) == (PayoutStatus.RETURNED, "account_closed")
    assert fold([reversed_, failed, paid]) == (PayoutStatus.RETURNED, "bank_recall")
    assert fold([(TransferEventKind.FAILED, None)]) == (PayoutStatus.RETURNED, "failed")


def test_a_link_of_any_characters_is_refused_not_an_error(provider: SandboxPayoutProvider) -> None:
    assert provider.account_for_link("acct_sb_1.99999999999.é" + "x" * 31) is None
    assert provider.account_for_link("acct.٣٣.ab") is None  # digits of another script


@pytest.mark.parametrize(
    ("cents", "currency", "rate_micros", "paid"),
    [
        (250, "USD", None, 250),
        (250, "MXN", 17_250_000, 4312),  # 43.125 pesos: the half centavo is not paid
        (250, "JPY", 150_000_000, 375),  # no minor unit
        (250, "KWD", 307_000, 767),  # three digits: 0.7675 dinars
        (0, "EUR", 920_000, 0),
    ],
)
def test_a_payout_is_its_cents_at_the_configured_rate_floored(
    cents: int, currency: str, rate_micros: int | None, paid: int
) -> None:
    fx = FxTable({"MX": "MXN"}, {} if rate_micros is None else {currency: rate_micros})
    assert fx.quote(cents, currency) == (paid, rate_micros or 1_000_000)


def test_a_country_without_a_currency_is_paid_in_dollars_and_a_missing_rate_pays_nothing() -> None:
    fx = FxTable({"MX": "MXN"}, {"MXN": 17_250_000})
    assert (fx.currency_for("MX"), fx.currency_for("FR")) == ("MXN", "USD")
    with pytest.raises(FxRateMissing):
        fx.quote(100, "EUR")


def test_a_payout_currency_without_a_rate_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="no rate for MXN"):
        Settings(payout_currency_by_country={"MX": "MXN"})
    with pytest.raises(ValueError, match="currency code"):
        Settings(payout_currency_by_country={"MX": "peso"}, payout_fx_rate_micros={"peso": 1})
    with pytest.raises(ValueError, match="country code"):
        Settings(payout_currency_by_country={"Mexico": "USD"})
    assert Settings(payout_currency_by_country={"PR": "USD"}).payout_fx_rate_micros == {}

"""A creator statement's payout line is the payout's own fields, read by name: each field of
the response comes from the field of the same name (``amount_cents`` from ``amount_minor``),
and the JSON a client reads keeps its names."""

from __future__ import annotations

import dataclasses

from giftwave.api.creators import StatementPayoutOut
from giftwave.economy.payouts import Payout, PayoutStatus


def _payout() -> Payout:
    return Payout(
        id="po_1",
        creator_id=7,
        diamonds=1_000,
        amount_minor=500,
        currency="USD",
        status=PayoutStatus.PAID,
        requested_at_us=1_700_000_000_000_000,
        expires_at_us=1_700_100_000_000_000,
        reviewed_by=None,
        reviewed_at_us=None,
        note=None,
        provider="sandbox",
        provider_transfer_id="tr_9",
        provider_reason="bank said no",
        transfer_attempts=1,
        payout_currency="EUR",
        payout_amount_minor=460,
        fx_rate_micros=920_000,
        fee_minor=3,
        flag=None,
        received_amount_minor=51_000,
        received_currency="JPY",
        provider_fx_rate_micros=110_870_000,
    )


def test_every_field_is_the_payouts_own() -> None:
    payout = _payout()
    line = StatementPayoutOut.of(payout).model_dump(mode="json")
    assert line == {
        "id": "po_1",
        "requested_at_us": payout.requested_at_us,
        "status": "paid",
        "diamonds": 1_000,
        "amount_cents": 500,
        "provider": "sandbox",
        "provider_transfer_id": "tr_9",
        "provider_reason": "bank said no",
        "payout_currency": "EUR",
        "payout_amount_minor": 460,
        "fx_rate_micros": 920_000,
        "received_amount_minor": 51_000,
        "received_currency": "JPY",
        "provider_fx_rate_micros": 110_870_000,
    }


def test_a_changed_payout_field_reaches_the_line() -> None:
    changed = dataclasses.replace(_payout(), amount_minor=501, provider=None)
    line = StatementPayoutOut.of(changed)
    assert (line.amount_cents, line.provider) == (501, None)
    # FastAPI checks a route's answer by validating the model's own dump: it must read back.
    again = StatementPayoutOut.model_validate(line.model_dump(by_alias=True))
    assert again == line

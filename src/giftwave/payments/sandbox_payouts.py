"""The sandbox payout provider: payee accounts, an onboarding page served by giftwave, and
transfers that succeed or fail on command, for demos and tests.

It keeps its own records in tables of its own (``sandbox_*``), as a real provider keeps its
side: every node of a demo sees the same accounts and transfers, and giftwave's payouts can be
compared with them. It tells giftwave what happened only by signed webhooks over HTTP to
``/v1/payouts/webhooks/sandbox`` (payments/sender.py), verified like a real provider's.

What an account's bank does with a transfer is chosen on the onboarding page, like the test
bank numbers of a real provider's test mode:

    pays         the transfer is paid                      (transfer.paid)
    fails        the bank refuses it: account_closed       (transfer.failed)
    answer_lost  the transfer is made but the first answer never arrives (a timeout): only a
                 retry with the same idempotency key learns of it, and then it is paid
    hangs        every transfer call is held, nothing made, for ``HANG_S`` before it times
                 out (an outage that keeps connections open): a crash while a payout is
                 being sent lands here, and choosing another bank ends the outage

A held call logs ``the transfer of payout <id> is held`` (a warning) as it starts waiting.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

import httpx
import orjson
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from giftwave.background import cancel
from giftwave.clock import now_us
from giftwave.db.tables import sandbox_payee_accounts as accounts
from giftwave.db.tables import sandbox_payout_transfers as transfers
from giftwave.errors import Code
from giftwave.payments.base import IgnoredEvent, ProviderUnavailable, WebhookRejected
from giftwave.payments.payout_base import (
    PayeeAccount,
    PayeeAccountUpdated,
    PayoutWebhook,
    ProviderTimeout,
    ProviderTransfer,
    TransferEvent,
    TransferEventKind,
    TransferRequest,
)
from giftwave.payments.records import DONE, PayoutState, Record, RecordKind
from giftwave.payments.sender import SignedSender
from giftwave.payments.signing import verified_event

log = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/v1/payouts/webhooks/sandbox"
ONBOARDING_PATH: Final = "/sandbox/onboarding"
LINK_TTL_S: Final = 3600  # an onboarding link works this long, like a real provider's
# What the sandbox asks of a new account, and of one asked for more documents.
NEW_ACCOUNT_NEEDS: Final = ("individual.verification.document", "external_account")
MORE_DOCUMENTS: Final = ("individual.verification.additional_document",)
REJECTED_REASON: Final = "rejected.other"
BANK_FAILURE_REASON: Final = "account_closed"
ID_MAX_CHARS: Final = 255
REASON_MAX_CHARS: Final = 255
MAX_SENDS_IN_FLIGHT: Final = 1000
HANG_S: Final = 60.0  # how long the ``hangs`` bank holds a transfer call before its timeout
BPS_PER_WHOLE: Final = 10_000
FEE_MAX_MINOR: Final = 2**62


@dataclass(frozen=True, slots=True)
class SandboxFee:
    """What the sandbox charges the platform for a paid transfer: fixed minor units plus
    basis points of the amount, rounded half up to the minor unit, as a provider bills."""

    fixed_minor: int = 0
    bps: int = 0

    def __post_init__(self) -> None:
        assert self.fixed_minor >= 0
        assert 0 <= self.bps <= BPS_PER_WHOLE

    def of(self, amount_minor: int) -> int:
        assert amount_minor >= 0
        return self.fixed_minor + (amount_minor * self.bps + BPS_PER_WHOLE // 2) // BPS_PER_WHOLE


# A transfer's status in the sandbox's table, as reconciliation states it.
TRANSFER_STATES: Final = {
    "pending": PayoutState.PROCESSING,
    TransferEventKind.PAID.value: PayoutState.PAID,
    TransferEventKind.FAILED.value: PayoutState.RETURNED,
    TransferEventKind.REVERSED.value: PayoutState.RETURNED,
}


class Bank(enum.StrEnum):
    PAYS = "pays"
    FAILS = "fails"
    ANSWER_LOST = "answer_lost"
    HANGS = "hangs"


class OnboardingAction(enum.StrEnum):
    APPROVE = "approve"
    MORE_DOCUMENTS = "more_documents"
    REJECT = "reject"


def _account_of(m: RowMapping) -> PayeeAccount:
    due = str(m["requirements_due"])
    return PayeeAccount(
        account_id=m["id"],
        details_submitted=bool(m["details_submitted"]),
        payouts_enabled=bool(m["payouts_enabled"]),
        requirements_due=tuple(x for x in due.split(",") if x),
        disabled_reason=m["disabled_reason"],
        version=int(m["version"]),
    )


class SandboxPayoutProvider:
    name = "sandbox"

    def __init__(
        self,
        *,
        db: Engine,
        secret: str,
        tolerance_s: int,
        client: httpx.AsyncClient,
        webhook_url: str,
        fee: SandboxFee | None = None,
    ) -> None:
        self._db = db
        self._fee = fee or SandboxFee()
        self._secret = secret
        self._tolerance_s = tolerance_s
        self._sender = SignedSender(secret=secret, client=client, url=webhook_url)
        self._sends: set[asyncio.Task[bool]] = set()

    # --- accounts and onboarding -----------------------------------------------------------

    def service_agreement(self, country: str) -> str | None:
        return None  # the sandbox pays anywhere, under one agreement

    async def create_account(
        self, creator_id: int, country: str, currency: str, service_agreement: str | None = None
    ) -> PayeeAccount:
        return await asyncio.to_thread(self._create_account, creator_id, country, currency)

    def _create_account(self, creator_id: int, country: str, currency: str) -> PayeeAccount:
        with self._db.begin() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(accounts).values(
                            id="acct_sb_" + secrets.token_urlsafe(15),
                            creator_id=creator_id,
                            country=country,
                            currency=currency,
                            details_submitted=False,
                            payouts_enabled=False,
                            requirements_due=",".join(NEW_ACCOUNT_NEEDS),
                            disabled_reason=None,
                            bank=Bank.PAYS.value,
                            version=1,
                        )
                    )
            except IntegrityError:
                pass  # the creator has one already: the same account again
            row = conn.execute(select(accounts).where(accounts.c.creator_id == creator_id)).one()
        return _account_of(row._mapping)

    async def onboarding_link(self, account_id: str, site_url: str, return_url: str) -> str:
        expires_s = int(time.time()) + LINK_TTL_S
        token = f"{account_id}.{expires_s}.{self._link_mac(account_id, expires_s)}"
        return f"{site_url}{ONBOARDING_PATH}/{token}?{urlencode({'return': return_url})}"

    def account_for_link(self, token: str, now_s: float | None = None) -> str | None:
        """The account an onboarding link is for; None when forged or expired."""
        if len(token) > 200:
            return None
        account_id, _, rest = token.partition(".")
        expires, _, mac = rest.partition(".")
        # Bytes: a link is read from a URL anyone can write, and compare_digest refuses
        # non-ASCII text.
        if not expires.isdigit() or not hmac.compare_digest(
            mac.encode(), self._link_mac(account_id, int(expires)).encode()
        ):
            return None
        now = time.time() if now_s is None else now_s
        return account_id if int(expires) >= now else None

    def _link_mac(self, account_id: str, expires_s: int) -> str:
        message = f"onboarding:{account_id}:{expires_s}".encode()
        return hmac.new(self._secret.encode(), message, hashlib.sha256).hexdigest()[:32]

    async def get_account(self, account_id: str) -> PayeeAccount:
        def read() -> PayeeAccount:
            with self._db.connect() as conn:
                row = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
            if row is None:
                raise ProviderUnavailable(Code.UNKNOWN_ACCOUNT, f"no account {account_id!r}")
            return _account_of(row._mapping)

        return await asyncio.to_thread(read)

    async def decide(self, account_id: str, action: OnboardingAction, bank: Bank) -> bool:
        """What the provider's reviewers decide; giftwave hears of it by webhook. True when
        the webhook was taken at once."""
        account = await asyncio.to_thread(self._decide, account_id, action, bank)
        return await self._sender.deliver(self.account_payload(account))

    def _decide(self, account_id: str, action: OnboardingAction, bank: Bank) -> PayeeAccount:
        values: dict[str, Any]
        if action is OnboardingAction.APPROVE:
            values = {"details_submitted": True, "payouts_enabled": True, "requirements_due": ""}
            values.update(disabled_reason=None, bank=bank.value)
        elif action is OnboardingAction.MORE_DOCUMENTS:
            values = {"details_submitted": True, "payouts_enabled": False}
            values.update(requirements_due=",".join(MORE_DOCUMENTS))
        else:
            values = {"payouts_enabled": False, "disabled_reason": REJECTED_REASON}
        with self._db.begin() as conn:
            conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(version=accounts.c.version + 1, **values)
            )
            row = conn.execute(select(accounts).where(accounts.c.id == account_id)).one()
        return _account_of(row._mapping)

    def account_payload(self, account: PayeeAccount) -> bytes:
        return _event(
            "account.updated",
            {
                "account_id": account.account_id,
                "details_submitted": account.details_submitted,
                "payouts_enabled": account.payouts_enabled,
                "requirements_due": list(account.requirements_due),
                "disabled_reason": account.disabled_reason,
                "version": account.version,
            },
        )

    # --- transfers -------------------------------------------------------------------------

    async def create_transfer(self, request: TransferRequest) -> ProviderTransfer:
        if await asyncio.to_thread(self._bank_of, request.account_id) is Bank.HANGS:
            log.warning("sandbox: the transfer of payout %s is held", request.payout_id)
            await asyncio.sleep(HANG_S)
            raise ProviderTimeout(Code.PROVIDER_TIMEOUT, "the provider held the transfer call")
        row, created = await asyncio.to_thread(self._create_transfer, request)
        if (row["account_id"], row["amount_minor"], row["currency"]) != (
            request.account_id,
            request.amount_minor,
            request.currency,
        ):
            raise ProviderUnavailable(
                Code.IDEMPOTENCY_KEY_REUSED, "this payout was sent before with other fields"
            )
        transfer = ProviderTransfer(
            row["id"],
            row["idempotency_key"],
            int(row["amount_minor"]),
            row["currency"],
            int(row["fee_minor"]),
        )
        bank = Bank(row["bank"])
        if created and bank is Bank.ANSWER_LOST:
            # Made, but the answer is lost: the transfer waits until it is asked for again.
            raise ProviderTimeout(Code.PROVIDER_TIMEOUT, "the transfer was sent; no answer came")
        if row["status"] == "pending":
            kind = TransferEventKind.FAILED if bank is Bank.FAILS else TransferEventKind.PAID
            reason = BANK_FAILURE_REASON if bank is Bank.FAILS else None
            self._send_later(await self.settle(transfer.transfer_id, kind, reason, send=False))
        return transfer

    def _bank_of(self, account_id: str) -> Bank | None:
        """The test bank of an account that may receive transfers (a closed one is refused
        before any bank is asked)."""
        with self._db.connect() as conn:
            account = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
        if account is None or not account.payouts_enabled or account.disabled_reason:
            return None
        return Bank(account.bank)

    def _create_transfer(self, request: TransferRequest) -> tuple[RowMapping, bool]:
        with self._db.begin() as conn:
            account = conn.execute(
                select(accounts).where(accounts.c.id == request.account_id)
            ).first()
            if account is None:
                raise ProviderUnavailable(Code.UNKNOWN_ACCOUNT, "no such sandbox account")
            if not account.payouts_enabled or account.disabled_reason:
                raise ProviderUnavailable(
                    Code.PAYOUTS_DISABLED, "this account cannot receive transfers"
                )
            created = True
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(transfers).values(
                            id="tr_sb_" + secrets.token_urlsafe(15),
                            idempotency_key=request.payout_id,
                            account_id=request.account_id,
                            amount_minor=request.amount_minor,
                            currency=request.currency,
                            status="pending",
                            created_at_us=now_us(),
                        )
                    )
            except IntegrityError:
                created = False  # the same key again: the transfer made the first time
            row = conn.execute(
                select(transfers).where(transfers.c.idempotency_key == request.payout_id)
            ).one()
        mapping = dict(row._mapping) | {"bank": account.bank}
        return mapping, created  # type: ignore[return-value]

    async def settle(
        self,
        transfer_id: str,
        kind: TransferEventKind,
        reason: str | None = None,
        *,
        send: bool = True,
    ) -> bytes:
        """What the bank does with a transfer (tests and the demo command it): recorded here,
        told to giftwave by webhook. Answers the event's payload. A paid transfer is charged
        the sandbox's fee once (a reversal later does not give it back, as a provider keeps
        the fee of work it did); a failed one is charged nothing."""

        def record() -> RowMapping:
            with self._db.begin() as conn:
                found = conn.execute(select(transfers).where(transfers.c.id == transfer_id)).first()
                if found is None:
                    raise ProviderUnavailable(Code.UNKNOWN_TRANSFER, f"no transfer {transfer_id!r}")
                values: dict[str, object] = {"status": kind.value, "reason": reason}
                if kind is TransferEventKind.PAID:
                    values["fee_minor"] = self._fee.of(int(found.amount_minor))
                conn.execute(
                    update(transfers).where(transfers.c.id == transfer_id).values(**values)
                )
                row = conn.execute(select(transfers).where(transfers.c.id == transfer_id)).one()
            return row._mapping

        row = await asyncio.to_thread(record)
        payload = _event(
            f"transfer.{kind.value}",
            {
                "transfer_id": row["id"],
                "payout_id": row["idempotency_key"],
                "amount_minor": int(row["amount_minor"]),
                "currency": row["currency"],
                "reason": reason,
                "fee_minor": int(row["fee_minor"]) if kind is TransferEventKind.PAID else 0,
            },
        )
        if send:
            await self._sender.deliver(payload)
        return payload

    async def take_back(self, event: TransferEvent) -> None:
        pass  # the sandbox's bank refuses a transfer before it is paid: nothing to take back

    def _send_later(self, payload: bytes) -> None:
        """A real provider reports a transfer after answering its creation: so does this."""
        if len(self._sends) >= MAX_SENDS_IN_FLIGHT:
            return  # the store says what happened; reconciliation finds it
        task = asyncio.create_task(self._sender.deliver(payload))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def close(self) -> None:
        for task in list(self._sends):
            await cancel(task)
        await self._sender.close()

    # --- webhooks --------------------------------------------------------------------------

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PayoutWebhook:
        event_id, kind, data = verified_event(
            self._secret, payload, headers, tolerance_s=self._tolerance_s
        )
        if not (isinstance(event_id, str) and 0 < len(event_id) <= ID_MAX_CHARS):
            raise WebhookRejected(Code.MALFORMED_WEBHOOK, "the event id is not a short string")
        if kind == "account.updated":
            return PayeeAccountUpdated(self.name, event_id, _parse_account(data))
        if kind.startswith("transfer."):
            try:
                transfer_kind = TransferEventKind(kind.removeprefix("transfer."))
            except ValueError:
                raise WebhookRejected(Code.UNKNOWN_EVENT, f"unknown event type {kind!r}") from None
            return _parse_transfer(self.name, event_id, transfer_kind, data)
        return IgnoredEvent(self.name, event_id, f"{kind[:64]!r} is not a payout event")


def transfer_records(conn: Connection, since_us: int) -> list[Record]:
    """The sandbox's transfers made from ``since_us`` on, as records (payments/records.py),
    and the fee it charged on each paid one: the reference is the transfer's idempotency key,
    giftwave's payout id."""
    rows = conn.execute(
        select(transfers)
        .where(transfers.c.created_at_us >= since_us)
        .order_by(transfers.c.created_at_us)
    ).all()
    records = []
    for r in rows:
        key, at_us = r.idempotency_key, int(r.created_at_us)
        state = TRANSFER_STATES[r.status]
        records.append(
            Record(RecordKind.PAYOUT, key, int(r.amount_minor), r.currency, state, at_us)
        )
        if r.fee_minor > 0:
            records.append(Record(RecordKind.FEE, key, int(r.fee_minor), r.currency, DONE, at_us))
    return records


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"id": "evt_sb_" + secrets.token_urlsafe(12), "type": kind, "data": data})


def _short(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= ID_MAX_CHARS


def _parse_account(data: dict[str, Any]) -> PayeeAccount:
    due, reason, version = (
        data.get("requirements_due"),
        data.get("disabled_reason"),
        data.get("version"),
    )
    if not (
        _short(data.get("account_id"))
        and isinstance(data.get("details_submitted"), bool)
        and isinstance(data.get("payouts_enabled"), bool)
        and isinstance(due, list)
        and len(due) <= 20
        and all(_short(x) and "," not in x for x in due)
        and (reason is None or _short(reason))
        and isinstance(version, int)
        and not isinstance(version, bool)
        and 0 < version < 2**62
    ):
        raise WebhookRejected(Code.MALFORMED_WEBHOOK, "a field of the account has the wrong type")
    return PayeeAccount(
        data["account_id"],
        data["details_submitted"],
        data["payouts_enabled"],
        tuple(due),
        reason,
        version,
    )


def _parse_transfer(
    provider: str, event_id: str, kind: TransferEventKind, data: dict[str, Any]
) -> TransferEvent:
    amount, currency, reason = data.get("amount_minor"), data.get("currency"), data.get("reason")
    fee = data.get("fee_minor", 0)  # absent from deliveries made before fees: none
    if not (
        _short(data.get("transfer_id"))
        and _short(data.get("payout_id"))
        and isinstance(amount, int)
        and not isinstance(amount, bool)
        and 0 <= amount < 2**62
        and isinstance(currency, str)
        and len(currency) == 3
        and (reason is None or (isinstance(reason, str) and len(reason) <= REASON_MAX_CHARS))
        and isinstance(fee, int)
        and not isinstance(fee, bool)
        and 0 <= fee < FEE_MAX_MINOR
    ):
        raise WebhookRejected(Code.MALFORMED_WEBHOOK, "a field of the transfer has the wrong type")
    return TransferEvent(
        provider,
        event_id,
        kind,
        data["transfer_id"],
        data["payout_id"],
        amount,
        currency.upper(),
        reason,
        fee,
    )

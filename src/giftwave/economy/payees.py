"""A creator's payee account at the payout provider: onboarding, its state, and the rule that
only a verified, payout-enabled payee may ask for a payout.

    none ─► start onboarding ─► pending ─► the provider's verified reports (webhooks):
        verified     details submitted, payouts enabled, nothing due
        restricted   something is due, or payouts are not enabled yet after the details
        disabled     the provider closed it (its reason is kept)
        pending      nothing submitted yet

A report is a whole account (never a change) carrying the provider's own order (``version``):
however many times and in whatever order reports arrive, the newest one stands.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from giftwave.clock import now_us
from giftwave.db.tables import payees
from giftwave.economy.fx import BASE_CURRENCY, FxTable
from giftwave.errors import Code, Forbidden, Invalid, NotFound, Unavailable
from giftwave.identity.permissions import require_creator
from giftwave.identity.users import Role, User
from giftwave.logs import audit
from giftwave.payments.base import ProviderUnavailable
from giftwave.payments.payout_base import (
    CrossBorderUnsupported,
    PayeeAccount,
    PayeeAccountUpdated,
    PayoutProvider,
)

REQUIREMENTS_MAX_CHARS: Final = 1000  # payees.requirements_due
# What is missing, by name, in a refusal and on the studio page.
NO_ACCOUNT: Final = "payee_account"
# The agreements under which the provider converts what is sent into the account's currency
# (Stripe's cross-border ``recipient`` accounts): giftwave sends US dollars, no rate of its own.
CONVERTED_AGREEMENTS: Final = frozenset({"recipient"})
DETAILS: Final = "details_submitted"
PAYOUTS_ENABLED: Final = "payouts_enabled"


class PayeeState(enum.StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"  # details submitted, payouts enabled, nothing due
    RESTRICTED = "restricted"
    DISABLED = "disabled"


def state_of(account: PayeeAccount) -> PayeeState:
    """The one rule from a provider's report to giftwave's state."""
    if account.disabled_reason:
        return PayeeState.DISABLED
    if account.details_submitted and account.payouts_enabled and not account.requirements_due:
        return PayeeState.VERIFIED
    if account.requirements_due and not account.details_submitted:
        return PayeeState.PENDING
    return PayeeState.RESTRICTED


@dataclass(frozen=True, slots=True)
class Payee:
    creator_id: int
    provider: str
    account_id: str
    country: str
    currency: str
    state: PayeeState
    requirements_due: tuple[str, ...]
    disabled_reason: str | None
    version: int
    # What the provider's account was opened under (Stripe: ``recipient`` abroad); None: its
    # default.
    service_agreement: str | None = None

    @property
    def transfer_currency(self) -> str:
        """What giftwave sends this payee in: their currency, at the operator's rate, unless
        the provider converts into it (a cross-border account): then US dollars."""
        if self.service_agreement in CONVERTED_AGREEMENTS:
            return BASE_CURRENCY
        return self.currency

    @property
    def ready(self) -> bool:
        return self.state is PayeeState.VERIFIED

    @property
    def missing(self) -> list[str]:
        if self.state is PayeeState.DISABLED:
            return [f"disabled:{self.disabled_reason}"]
        if self.state is PayeeState.VERIFIED:
            return []
        base = [DETAILS] if self.state is PayeeState.PENDING else []
        return base + list(self.requirements_due) + [PAYOUTS_ENABLED]


def _payee_of(row: object) -> Payee:
    m = row._mapping  # type: ignore[attr-defined]
    return Payee(
        creator_id=int(m["creator_id"]),
        provider=m["provider"],
        account_id=m["account_id"],
        country=m["country"],
        currency=m["currency"],
        state=PayeeState(m["state"]),
        requirements_due=tuple(x for x in str(m["requirements_due"]).split(",") if x),
        disabled_reason=m["disabled_reason"],
        version=int(m["version"]),
        service_agreement=m["service_agreement"],
    )


def find_payee(conn: Connection, creator_id: int) -> Payee | None:
    row = conn.execute(select(payees).where(payees.c.creator_id == creator_id)).first()
    return None if row is None else _payee_of(row)


class Payees:
    def __init__(self, db: Engine, provider: PayoutProvider, fx: FxTable) -> None:
        self._db = db
        self._provider = provider
        self._fx = fx

    @property
    def provider(self) -> PayoutProvider:
        return self._provider

    @property
    def fx(self) -> FxTable:
        return self._fx

    async def get(self, creator_id: int) -> Payee | None:
        def read() -> Payee | None:
            with self._db.connect() as conn:
                return find_payee(conn, creator_id)

        return await asyncio.to_thread(read)

    async def start_onboarding(self, creator: User, site_url: str, return_url: str) -> str:
        """The provider's onboarding address for this creator: their account is opened the
        first time (one per creator), and each call makes a fresh, short-lived link."""
        require_creator(creator, "have a payee account")
        if creator.blocked:
            raise Forbidden(Code.ACCOUNT_BLOCKED, "this account is blocked")
        payee = await self.get(creator.id)
        try:
            if payee is None:
                agreement = self._agreement(creator.country)
                account = await self._provider.create_account(
                    creator.id, creator.country, self._fx.currency_for(creator.country), agreement
                )
                payee = await asyncio.to_thread(self._insert, creator, account, agreement)
            return await self._provider.onboarding_link(payee.account_id, site_url, return_url)
        except ProviderUnavailable as exc:
            raise Unavailable(exc.code, exc.detail) from exc

    def _agreement(self, country: str) -> str | None:
        """What the creator's account is opened under; refused, before any account is made,
        where the provider cannot pay their country from the platform's."""
        try:
            return self._provider.service_agreement(country)
        except CrossBorderUnsupported as exc:
            raise Invalid(
                Code.CROSS_BORDER_UNSUPPORTED,
                f"payouts cannot be sent to {exc.country} from this platform's country "
                f"({exc.platform_country})",
                country=exc.country,
                platform_country=exc.platform_country,
            ) from None

    def _insert(self, creator: User, account: PayeeAccount, agreement: str | None) -> Payee:
        now = now_us()
        with self._db.begin() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(payees).values(
                            creator_id=creator.id,
                            provider=self._provider.name,
                            account_id=account.account_id,
                            country=creator.country,
                            currency=self._fx.currency_for(creator.country),
                            state=state_of(account).value,
                            requirements_due=",".join(account.requirements_due),
                            disabled_reason=account.disabled_reason,
                            version=account.version,
                            service_agreement=agreement,
                            created_at_us=now,
                            updated_at_us=now,
                        )
                    )
                audit(
                    "audit.payee_created",
                    creator_id=creator.id,
                    provider=self._provider.name,
                    account_id=account.account_id,
                )
            except IntegrityError:
                pass  # a concurrent start made it first: the provider answered the same account
            payee = find_payee(conn, creator.id)
        assert payee is not None, "inserted or found in the same transaction"
        return payee

    async def link_account(self, visitor: User | None, account_id: str | None) -> str:
        """The account of an onboarding link (None: forged or expired), to its payee's
        creator or an admin only: anyone else finds nothing there."""
        payee = None if visitor is None else await self.get(visitor.id)
        mine = payee is not None and payee.account_id == account_id
        admin = visitor is not None and visitor.role is Role.ADMIN
        if account_id is None or not (mine or admin):
            raise NotFound(Code.ONBOARDING_NOT_FOUND, "not your onboarding link, or expired")
        return account_id

    async def apply(self, event: PayeeAccountUpdated) -> Payee | None:
        """A verified report of an account: stored when newer than the one known. None: no
        payee has this account (not ours, or from before a reset)."""
        return await asyncio.to_thread(self._apply, event)

    def _apply(self, event: PayeeAccountUpdated) -> Payee | None:
        account = event.account
        due = ",".join(account.requirements_due)
        if len(due) > REQUIREMENTS_MAX_CHARS:
            due = due[:REQUIREMENTS_MAX_CHARS].rsplit(",", 1)[0]
        with self._db.begin() as conn:
            done = conn.execute(
                update(payees)
                .where(
                    payees.c.provider == event.provider,
                    payees.c.account_id == account.account_id,
                    payees.c.version < account.version,  # an older report changes nothing
                )
                .values(
                    state=state_of(account).value,
                    requirements_due=due,
                    disabled_reason=account.disabled_reason,
                    version=account.version,
                    updated_at_us=now_us(),
                )
            )
            row = conn.execute(
                select(payees).where(
                    payees.c.provider == event.provider,
                    payees.c.account_id == account.account_id,
                )
            ).first()
        if row is None:
            return None
        payee = _payee_of(row)
        if done.rowcount == 1:
            audit(
                "audit.payee_updated",
                creator_id=payee.creator_id,
                provider=event.provider,
                account_id=account.account_id,
                state=payee.state.value,
                missing=",".join(payee.missing),
                event_id=event.event_id,
            )
        return payee

    async def require_ready(self, creator_id: int) -> Payee:
        """The creator's payee, if it may receive a payout; else ``payee_not_ready`` naming
        what is missing."""
        payee = await self.get(creator_id)
        if payee is None:
            raise Forbidden(
                Code.PAYEE_NOT_READY,
                "set up your payout account first",
                missing=[NO_ACCOUNT],
                payee_state=None,
            )
        if not payee.ready:
            raise Forbidden(
                Code.PAYEE_NOT_READY,
                f"your payout account is {payee.state.value}: " + ", ".join(payee.missing),
                missing=payee.missing,
                payee_state=payee.state.value,
            )
        return payee

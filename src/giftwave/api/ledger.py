"""The operator's ledger API: open accounts, read balances, submit transfers.

Guarded by the ``GIFTWAVE_ADMIN_TOKEN`` bearer token; switched off when none is configured.
Platform integrations post value through here; the economy API (gifts, top-ups) builds on it.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from giftwave.api.fields import StrictBool
from giftwave.api.problems import Problem
from giftwave.api.state import Services, services
from giftwave.errors import Code
from giftwave.ledger.accounts import get_account, open_account
from giftwave.ledger.model import (
    Account,
    AccountFlags,
    Outcome,
    Transfer,
    TransferCode,
    TransferKind,
)

Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1, strict=True)]
FlagName = Literal["no_overdraft", "frozen"]
MAX_TRANSFERS_PER_REQUEST = 8190

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
TRANSFERS_PATH: Final = "/v1/ledger/transfers"
# The operator's batches: every transfer at its longest ids fits (api/body_limit.py).
TRANSFERS_BODY_MAX_BYTES: Final = MAX_TRANSFERS_PER_REQUEST * 1024


async def require_admin(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Services:
    state = services(request)
    token = state.settings.admin_token
    if token is None:
        raise Problem(
            403, Code.ADMIN_API_DISABLED, "set GIFTWAVE_ADMIN_TOKEN to use the ledger API"
        )
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        given.encode(), token.get_secret_value().encode()
    ):
        raise Problem(401, Code.UNAUTHORIZED, "a valid admin bearer token is required")
    return state


Admin = Annotated[Services, Depends(require_admin)]


class OpenAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=128)
    asset: str = Field(max_length=8)
    flags: list[FlagName] = []
    owner: str = Field(default="", max_length=128)


class AccountOut(BaseModel):
    id: int
    name: str
    asset: str
    owner: str
    flags: list[FlagName]
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    balance: int
    available: int

    @classmethod
    def of(cls, a: Account) -> AccountOut:
        flags: list[FlagName] = []
        if a.flags & AccountFlags.NO_OVERDRAFT:
            flags.append("no_overdraft")
        if a.flags & AccountFlags.FROZEN:
            flags.append("frozen")
        return cls(
            id=a.id,
            name=a.name,
            asset=a.asset,
            owner=a.owner,
            flags=flags,
            debits_pending=a.debits_pending,
            debits_posted=a.debits_posted,
            credits_pending=a.credits_pending,
            credits_posted=a.credits_posted,
            balance=a.balance,
            available=a.available,
        )


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(max_length=200)
    debit_account_id: Int64 = 0
    credit_account_id: Int64 = 0
    amount: Int64
    code: TransferCode
    linked: StrictBool = False
    kind: TransferKind = TransferKind.POSTED
    pending_id: str | None = Field(default=None, max_length=200)
    reverses_id: str | None = Field(default=None, max_length=200)
    timeout_s: Int64 = 0


class SubmitTransfers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transfers: list[TransferIn] = Field(min_length=1, max_length=MAX_TRANSFERS_PER_REQUEST)


class TransferResult(BaseModel):
    id: str
    result: Outcome


class SubmitResults(BaseModel):
    results: list[TransferResult]


@router.post("/accounts", response_model=AccountOut)
async def open_account_route(body: OpenAccount, state: Admin) -> AccountOut:
    flags = AccountFlags.NONE
    for name in body.flags:
        flags |= AccountFlags[name.upper()]

    def work() -> Account:
        with state.db.begin() as conn:
            return open_account(conn, body.name, body.asset, flags=flags, owner=body.owner)

    return AccountOut.of(await run_in_threadpool(work))


@router.get("/accounts/{key}", response_model=AccountOut)
async def get_account_route(key: str, state: Admin) -> AccountOut:
    def work() -> Account:
        with state.db.connect() as conn:
            return get_account(conn, key)

    return AccountOut.of(await run_in_threadpool(work))


@router.post(TRANSFERS_PATH.removeprefix(router.prefix), response_model=SubmitResults)
async def submit_transfers_route(body: SubmitTransfers, state: Admin) -> SubmitResults:
    """Post transfers; each gets its own result. Idempotent by transfer id."""
    limit = state.engine.max_submission_transfers
    if len(body.transfers) > limit:
        raise Problem(
            422,
            Code.TOO_MANY_TRANSFERS,
            f"this server takes at most {limit} transfers per request",
            limit=limit,
        )
    transfers = [
        Transfer(
            t.id,
            t.debit_account_id,
            t.credit_account_id,
            t.amount,
            t.code,
            t.linked,
            t.kind,
            t.pending_id,
            t.reverses_id,
            t.timeout_s,
        )
        for t in body.transfers
    ]
    outcomes = await state.engine.submit(transfers)
    return SubmitResults(
        results=[
            TransferResult(id=t.id, result=o) for t, o in zip(transfers, outcomes, strict=True)
        ]
    )

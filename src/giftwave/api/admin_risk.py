"""The admin risk queue's JSON: flags with their evidence and links, and the decisions
(clear, hold, freeze) on them (economy/risk_review.py; docs/risk.md)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import AdminPrincipal, economy_of
from giftwave.api.fields import PlainText
from giftwave.economy.risk_flags import LIST_MAX, NOTE_MAX_CHARS, FlagState
from giftwave.economy.risk_review import Decision, FlagView, RiskReview
from giftwave.economy.services import Economy

router = APIRouter(prefix="/v1/admin/risk", tags=["admin"])
Econ = Annotated[Economy, Depends(economy_of)]
FlagId = Annotated[int, Path(ge=1, le=2**62)]
ACTIVE = (FlagState.OPEN, FlagState.HELD, FlagState.FROZEN)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Decision
    note: PlainText | None = Field(default=None, max_length=NOTE_MAX_CHARS)


def review_of(economy: Economy) -> RiskReview:
    return RiskReview(economy.db, economy.wallets)


def view_out(view: FlagView) -> dict[str, Any]:
    """A flag as JSON: the flag's fields, its evidence as the rule wrote it, the linked rows."""
    out = asdict(view)
    out["flag"]["state"] = view.flag.state.value
    return out


@router.get("")
async def risk_queue(
    economy: Econ,
    admin: AdminPrincipal,
    state: FlagState | None = None,
    user_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_MAX)] = 50,
) -> list[dict[str, Any]]:
    """Flags, newest first: those still in force (open, held, frozen), or of one state."""
    states = ACTIVE if state is None else (state,)
    views = await run_in_threadpool(review_of(economy).queue, states, user_id, limit)
    return [view_out(v) for v in views]


@router.get("/{flag_id}")
async def risk_flag(flag_id: FlagId, economy: Econ, admin: AdminPrincipal) -> dict[str, Any]:
    return view_out(await run_in_threadpool(review_of(economy).one, flag_id))


@router.post("/{flag_id}/decision")
async def decide_flag(
    flag_id: FlagId, body: DecisionIn, economy: Econ, admin: AdminPrincipal
) -> dict[str, Any]:
    """Clear, hold or freeze; audited. Deciding again (hold, then freeze) is allowed until the
    flag is cleared; a cleared flag answers 409 ``risk_flag_closed``."""
    by = None if admin.user is None else admin.user.id
    view = await run_in_threadpool(review_of(economy).decide, flag_id, body.decision, by, body.note)
    return view_out(view)

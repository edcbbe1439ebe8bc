"""Battles between two live creators: challenge, answer, watch, end early.

A creator live on one stream challenges another live stream; the invited creator accepts (a
3-second countdown, then ``duration_s``) or declines; unanswered, the invitation expires after
a minute. Either creator may end an active battle early: it is scored as it stands. Each change
is announced to both rooms (docs/protocol.md); the result is read from the committed gifts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import StreamingUser, economy_of
from giftwave.api.state import services
from giftwave.economy.services import Economy
from giftwave.live import battle_service
from giftwave.live.battle_referee import Referee
from giftwave.live.battles import (
    DEFAULT_DURATION_S,
    MAX_DURATION_S,
    Battle,
    BattleStatus,
    Winner,
)

router = APIRouter(tags=["battles"])
Econ = Annotated[Economy, Depends(economy_of)]
BattleId = Annotated[int, Path(ge=1, le=2**62)]


async def referee_of(request: Request) -> Referee:
    referee: Referee = services(request).referee
    return referee


Ref = Annotated[Referee, Depends(referee_of)]


class ChallengeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stream_id: str = Field(min_length=1, max_length=24, description="your live stream")
    opponent_stream_id: str = Field(min_length=1, max_length=24)
    duration_s: int = Field(
        default=DEFAULT_DURATION_S,
        ge=1,
        le=MAX_DURATION_S,
        description="seconds; at least 60 unless the server allows shorter battles",
    )


class SideOut(BaseModel):
    side: Literal["a", "b"]
    stream_id: str
    creator_id: int
    handle: str
    score: int = Field(description="coins of committed gifts to this side during the battle")


class BattleOut(BaseModel):
    id: int
    status: BattleStatus
    sides: list[SideOut] = Field(description="a: the challenger, b: the invited creator")
    duration_s: int
    created_at_us: int
    invitation_expires_at_us: int
    starts_at_us: int | None = Field(description="after the countdown; set once accepted")
    ends_at_us: int | None
    ended_at_us: int | None = Field(description="when it ended, was declined or expired")
    winner: Winner | None = Field(description="a, b or draw, once ended")

    @classmethod
    def of(cls, battle: Battle, scores: tuple[int, int]) -> BattleOut:
        return cls(
            id=battle.id,
            status=battle.status,
            sides=[
                SideOut(
                    side=s.side,
                    stream_id=s.stream_id,
                    creator_id=s.creator_id,
                    handle=s.handle,
                    score=s.score,
                )
                for s in battle.sides(*scores)
            ],
            duration_s=battle.duration_s,
            created_at_us=battle.created_at_us,
            invitation_expires_at_us=battle.invitation_expires_at_us,
            starts_at_us=battle.started_at_us,
            ends_at_us=battle.ends_at_us,
            ended_at_us=battle.ended_at_us,
            winner=battle.winner,
        )


async def _out(economy: Economy, battle: Battle) -> BattleOut:
    """The battle with its scores: the stored result, or what is committed so far."""
    if battle.status is not BattleStatus.ACTIVE:
        return BattleOut.of(battle, (battle.score_a, battle.score_b))
    scores = await run_in_threadpool(battle_service.committed_scores, economy.db, battle)
    return BattleOut.of(battle, scores)


@router.post("/v1/battles", status_code=201, response_model=BattleOut)
async def challenge(
    body: ChallengeIn, economy: Econ, referee: Ref, user: StreamingUser
) -> BattleOut:
    """Challenge another live stream from yours; its creator has a minute to accept."""
    battle = await run_in_threadpool(
        partial(
            battle_service.challenge,
            economy.db,
            user.id,
            body.stream_id,
            body.opponent_stream_id,
            body.duration_s,
            min_duration_s=economy.settings.battle_min_duration_s,
        )
    )
    await referee.announce(battle)
    return await _out(economy, battle)


@router.get("/v1/battles/{battle_id}", response_model=BattleOut)
async def battle(battle_id: BattleId, economy: Econ) -> BattleOut:
    return await _out(economy, await run_in_threadpool(battle_service.get, economy.db, battle_id))


async def _answer(
    act: Callable[[Engine, int, int], tuple[Battle, bool]],
    economy: Economy,
    referee: Referee,
    battle_id: int,
    user_id: int,
) -> Battle:
    """A creator's move on a battle; both rooms are told when it changed the battle."""
    battle, changed = await run_in_threadpool(act, economy.db, battle_id, user_id)
    if changed:
        await referee.announce(battle)
    return battle


@router.post("/v1/battles/{battle_id}/accept", response_model=BattleOut)
async def accept(
    battle_id: BattleId, economy: Econ, referee: Ref, user: StreamingUser, request: Request
) -> BattleOut:
    """The invited creator accepts; again, it answers the battle as it is."""
    act = partial(battle_service.accept, notices=services(request).notifications)
    accepted = await _answer(act, economy, referee, battle_id, user.id)
    return await _out(economy, accepted)


@router.post("/v1/battles/{battle_id}/decline", response_model=BattleOut)
async def decline(
    battle_id: BattleId, economy: Econ, referee: Ref, user: StreamingUser
) -> BattleOut:
    declined = await _answer(battle_service.decline, economy, referee, battle_id, user.id)
    return await _out(economy, declined)


@router.post("/v1/battles/{battle_id}/end", response_model=BattleOut)
async def end(battle_id: BattleId, economy: Econ, referee: Ref, user: StreamingUser) -> BattleOut:
    """Either creator ends the battle now, scored as it stands (answered with the result,
    about a second later: gifts sent just before the end are counted), or withdraws an
    invitation."""
    stopped = await _answer(battle_service.stop, economy, referee, battle_id, user.id)
    if stopped.status is BattleStatus.ACTIVE:
        stopped = await referee.finish_when_due(stopped.id)
    return await _out(economy, stopped)


@router.get("/v1/streams/{stream_id}/battle", response_model=BattleOut)
async def stream_battle(stream_id: str, economy: Econ) -> BattleOut:
    """The stream's pending or active battle."""
    current = await run_in_threadpool(battle_service.of_stream, economy.db, stream_id)
    return await _out(economy, current)

"""The role rules live in the domain's services, once: calling a service as a viewer is
refused with ``not_a_creator`` without any route in between, and no router checks a role."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path
from typing import Final

import pytest
from sqlalchemy import Engine

import giftwave.api
from giftwave.clips.service import Clips
from giftwave.config import Settings
from giftwave.errors import Code, Forbidden
from giftwave.identity.users import AgeRule, Role, User, create_user
from giftwave.live import stream_service
from giftwave.live.goals import GoalKind
from giftwave.live.overlay_keys import creator_key, rotate_creator_key
from giftwave.webhooks import creator_endpoints
from giftwave.webhooks.service import Webhooks

TODAY: Final = date(2026, 12, 6)
AGE: Final = AgeRule(min_age=18, by_country={})
ROUTERS: Final = Path(giftwave.api.__file__).parent


def _user(db: Engine, handle: str, role: Role) -> User:
    with db.begin() as conn:
        return create_user(
            conn,
            handle=handle,
            role=role,
            birth_date=date(1990, 1, 1),
            country="US",
            today=TODAY,
            age_rule=AGE,
        )


def _refused(exc: pytest.ExceptionInfo[Forbidden]) -> None:
    assert exc.value.code is Code.NOT_A_CREATOR
    assert exc.value.status == 403


async def test_a_viewer_is_refused_by_each_creator_service(sa_engine: Engine) -> None:
    viewer = _user(sa_engine, "viewer", Role.VIEWER)
    with pytest.raises(Forbidden) as refused:
        stream_service.go_live(sa_engine, viewer, title="hi", language="en", playback_url=None)
    _refused(refused)
    for key in (creator_key, rotate_creator_key):
        with pytest.raises(Forbidden) as refused:
            key(sa_engine, viewer)
        _refused(refused)
    with pytest.raises(Forbidden) as refused:
        Clips.require_poster(viewer)
    _refused(refused)
    hooks = Webhooks(Settings(), sa_engine, follow=None)
    with pytest.raises(Forbidden) as refused:
        await creator_endpoints.create(hooks, viewer, "https://example.com/hook", ["gift"])
    _refused(refused)
    with pytest.raises(Forbidden) as refused:
        await creator_endpoints.listed(hooks, viewer)
    _refused(refused)


def test_a_creator_goes_live_and_sets_a_goal_in_one_call_each(sa_engine: Engine) -> None:
    creator = _user(sa_engine, "creator", Role.CREATOR)
    other = _user(sa_engine, "other", Role.CREATOR)
    stream = stream_service.go_live(
        sa_engine, creator, title="live", language="en", playback_url=None
    )
    assert stream.live
    assert stream.creator_id == creator.id
    with pytest.raises(Forbidden) as refused:
        stream_service.set_stream_goal(
            sa_engine, stream.id, other, kind=GoalKind.LIKES, target=10, title="t", gift_id=None
        )
    assert refused.value.code is Code.NOT_YOUR_STREAM
    goal = stream_service.set_stream_goal(
        sa_engine, stream.id, creator, kind=GoalKind.LIKES, target=10, title="t", gift_id=None
    )
    assert goal.target == 10
    assert creator_key(sa_engine, creator) == creator_key(sa_engine, creator)


def test_no_router_checks_the_creator_role() -> None:
    found = []
    for path in sorted(ROUTERS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            by_name = isinstance(node, ast.Attribute) and node.attr == "NOT_A_CREATOR"
            by_value = isinstance(node, ast.Constant) and node.value == Code.NOT_A_CREATOR.value
            if by_name or by_value:
                found.append(f"{path.name}:{node.lineno}")
    assert not found, f"a router refuses by role itself: {found}"

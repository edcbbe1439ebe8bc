"""The ledger's followers in their own process (``GIFTWAVE_FOLLOWERS=process``, followers.py), on
SQLite and PostgreSQL: gifter levels, club points and the fraud rules follow the ledger there
and not in the serving process, the serving process announces the level-ups the child
committed, a child killed with SIGKILL is started again and goes on where the ledger says,
stopping the app stops the child, and a server killed with SIGKILL leaves no child behind."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from economy_client import AppFactory, economy_app, grant, register, until
from serverproc import one_server
from sqlalchemy import Engine, func, select

from giftwave import metrics
from giftwave.api.state import app_services
from giftwave.db import watermarks
from giftwave.db.tables import transfers
from giftwave.db.urls import DatabaseUrl
from giftwave.economy.risk_follower import WATERMARK as RISK
from giftwave.followers import Followers
from giftwave.social.club_points import WATERMARK as CLUB_POINTS
from giftwave.social.level_follower import WATERMARK as LEVELS
from giftwave.social.level_follower import LevelUp

__all__ = ["economy_app"]

# The child runs each follower about every second (the rules every 0.2 s here).
IN_PROCESS = {"followers": "process", "risk_interval_s": 0.2}
WAIT_S = 30.0  # a fresh interpreter starts, then a second or two of rounds; a loaded machine


def head(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.max(transfers.c.seq))).scalar_one())


def followed(db: Engine) -> bool:
    """Every follower of the child is at the ledger's head."""
    last = head(db)
    return all(watermarks.position(db, name) >= last for name in (LEVELS, CLUB_POINTS, RISK))


def followers_of(client: httpx.AsyncClient) -> Followers:
    found = app_services(client.app).followers  # type: ignore[attr-defined]
    assert found is not None
    return found


async def test_the_followers_run_in_their_own_process_and_a_killed_one_starts_again(
    economy_app: AppFactory,
) -> None:
    async with economy_app(**IN_PROCESS) as client:
        services = app_services(client.app)  # type: ignore[attr-defined]
        db, levels = services.db, services.levels
        followers = followers_of(client)
        said: list[LevelUp] = []

        async def capture(ups: Sequence[LevelUp]) -> None:
            said.extend(ups)

        levels.add_announcer(capture)
        creator = await register(client, "creator")
        club = await client.put("/v1/me/club", json={"name": "Crew"}, headers=creator.auth)
        assert club.status_code in (200, 201), club.text
        viewer = await register(client)
        await grant(client, viewer, 1_000)
        stream = await creator.go_live()
        assert (await viewer.gift(stream, "hand_hearts")).status_code == 201  # level 15

        await until(lambda: followers.pid is not None, WAIT_S, "the child started")
        first = followers.pid
        assert first != os.getpid()
        await until(lambda: followed(db), WAIT_S, "each follower reached the ledger's head")
        curve = levels.curve

        async def announced(level: int) -> bool:
            await levels.run()  # the serving process's round: it follows nothing itself
            return any(up.user_id == viewer.id and up.level == level for up in said)

        for _ in range(int(WAIT_S / 0.1)):
            if await announced(curve.level(100)):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the child's level-up was never announced here")
        body = (await client.get(f"/v1/users/{viewer.id}/level")).json()
        assert body["coins"] == 100

        # kill -9: a new child goes on from the positions the ledger holds.
        restarts = metrics.FOLLOWERS_RESTARTS._value.get()
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert (await viewer.gift(stream, "hand_hearts", 5)).status_code == 201  # 600 coins
        await until(
            lambda: followers.pid not in (None, first), WAIT_S, "a new child after the SIGKILL"
        )
        await until(lambda: followed(db), WAIT_S, "the new child caught up")
        body = (await client.get(f"/v1/users/{viewer.id}/level")).json()
        assert (body["coins"], body["level"]) == (600, curve.level(600))
        assert metrics.FOLLOWERS_RESTARTS._value.get() == restarts + 1
        last = followers.pid
    assert last is not None
    # The app stopped: so did its child.
    try:
        os.kill(last, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError("the followers process outlived the app")


async def test_inline_and_off_start_no_child(economy_app: AppFactory) -> None:
    for mode in ("inline", "off"):
        async with economy_app(followers=mode) as client:
            assert app_services(client.app).followers is None  # type: ignore[attr-defined]


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_a_killed_server_takes_its_followers_process_with_it(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path) as server:  # GIFTWAVE_FOLLOWERS: the default
        child = None
        for _ in range(300):
            found = [
                c
                for c in children(server.pid)
                if "giftwave.followers" in Path(f"/proc/{c}/cmdline").read_text()
            ]
            if found:
                [child] = found
                break
            time.sleep(0.1)
        assert child is not None, "no followers process under the server"
        server.kill()  # SIGKILL: no shutdown; the child reads EOF on its socket
        for _ in range(300):
            try:
                state = Path(f"/proc/{child}/stat").read_text().split(") ", 1)[1][0]
            except FileNotFoundError:
                break
            if state in "ZX":
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the followers process outlived its server by 30 s")


async def test_one_child_a_node_whatever_the_serving_processes(
    economy_app: AppFactory, tmp_path: Path
) -> None:
    """`serve --workers N`: each serving process asks for the node's lock; one runs the child,
    and another takes over when it stops."""
    async with economy_app() as client:
        settings = app_services(client.app).settings  # type: ignore[attr-defined]
        first, second = Followers(settings, str(tmp_path)), Followers(settings, str(tmp_path))
        first.start()
        await until(lambda: first.pid is not None, WAIT_S, "the first one's child")
        second.start()
        await asyncio.sleep(2.0)
        assert second.pid is None  # the node has its child
        await asyncio.to_thread(first.stop)
        assert first.pid is None
        await until(lambda: second.pid is not None, WAIT_S, "the second one took over")
        await asyncio.to_thread(second.stop)
        assert second.pid is None

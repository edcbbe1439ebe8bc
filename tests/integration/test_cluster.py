"""scripts/cluster.sh as an operator runs it: `up 2` starts two `giftwave serve` nodes and
HAProxy (deploy/haproxy/haproxy.cfg) on 127.0.0.1 against PostgreSQL and a private Redis;
gifts sent through HAProxy land on both nodes; a viewer whose room socket HAProxy put on one
node sees a gift that HAProxy sent to the other (the broker carries it); `down` stops every
process `up` started, also when the test fails; the ledger verifies clean."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import httpx
import pytest
import websockets
from liveclient import Client, as_user, go_live, person
from redisproc import PrivateRedis
from serverproc import (
    ADMIN_TOKEN,
    assert_ledger_verify_clean,
    free_port,
    giftwave_env,
    giftwave_executable,
)

from giftwave.db.urls import DatabaseUrl

ROOT: Final = Path(__file__).resolve().parents[2]
SCRIPT: Final = ROOT / "scripts" / "cluster.sh"
SCRIPT_TIMEOUT_S: Final = 120.0
NODE_HEADER: Final = "x-giftwave-node"  # set by HAProxy: the server that answered
ADMIN: Final = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GIFTS_TRIED: Final = 8
_keys = itertools.count(1)


def _cluster(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *command],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
        check=False,
    )


def _started_pids(state: Path) -> list[int]:
    return [int(p.read_text()) for p in sorted(state.glob("*.pid"))]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) has stopped serving all the same.
    status = Path(f"/proc/{pid}/status").read_text()
    return "\nState:\tZ" not in status


@contextmanager
def _cluster_up(env: dict[str, str], state: Path) -> Iterator[list[int]]:
    """`up 2`, then `down` whatever happens; yields the pids `up` started."""
    pids: list[int] = []
    try:
        up = _cluster(["up", "2"], env)
        pids = _started_pids(state)
        assert up.returncode == 0, f"cluster.sh up:\n{up.stdout}\n{up.stderr}"
        assert len(pids) == 3, pids  # two nodes and HAProxy
        yield pids
    except BaseException:
        for log in sorted(state.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-4000:]}")
        raise
    finally:
        down = _cluster(["down"], env)
        assert down.returncode == 0, f"cluster.sh down:\n{down.stdout}\n{down.stderr}"
        assert [pid for pid in pids if _alive(pid)] == [], "cluster.sh down left processes"
        assert list(state.glob("*.pid")) == []


async def _grant(http: httpx.AsyncClient, user_id: int) -> None:
    r = await http.post(
        f"/v1/admin/users/{user_id}/coins",
        json={"coins": 1000, "idempotency_key": f"cluster-grant-{user_id}"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text


async def _gift(http: httpx.AsyncClient, token: str, stream: str) -> str:
    """A rose through HAProxy: the node that committed it."""
    r = await http.post(
        f"/v1/streams/{stream}/gifts",
        json={"gift_id": "rose", "count": 1, "idempotency_key": f"cluster-{next(_keys)}"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    return r.headers[NODE_HEADER]


@pytest.mark.slow
@pytest.mark.parametrize("bare_db_url", ["postgresql"], indirect=True)
async def test_two_nodes_behind_haproxy_share_gifts_and_rooms(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    state = tmp_path / "cluster"
    port = free_port()
    with PrivateRedis(tmp_path) as redis:
        env = giftwave_env(bare_db_url)
        env.update(
            GIFTWAVE_PASSWORD_TIME_COST="1",
            GIFTWAVE_PASSWORD_MEMORY_KIB="8",
            GIFTWAVE_BROKER_URL=redis.url,
            CLUSTER_DIR=str(state),
            CLUSTER_PORT=str(port),
            CLUSTER_NODE_PORTS=f"{free_port()} {free_port()}",
            CLUSTER_GIFTWAVE=giftwave_executable(),
        )
        with _cluster_up(env, state):
            front = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=front, timeout=30) as http:
                _, creator = await person(http, "creator")
                viewer_id, viewer = await person(http, "viewer")
                await _grant(http, viewer_id)
                stream = await go_live(http, creator, "two nodes")

                # Nothing else open: leastconn breaks its ties in turn, so both nodes commit.
                nodes = {await _gift(http, viewer, stream) for _ in range(4)}
                assert nodes == {"node1", "node2"}

                url = front.replace("http://", "ws://") + f"/v1/streams/{stream}/ws"
                async with websockets.connect(await as_user(http, url, creator)) as ws:
                    watcher_node = ws.response.headers[NODE_HEADER]
                    watcher = Client(ws)
                    await watcher.recv()  # the snapshot
                    # The socket holds a connection on its node: leastconn sends the next
                    # requests to the other one. Each try is a new sender, so the gift the
                    # watcher must see is one that the other node committed.
                    for _ in range(GIFTS_TRIED):
                        sender_id, sender = await person(http, "viewer")
                        await _grant(http, sender_id)
                        node = await _gift(http, sender, stream)
                        if node != watcher_node:
                            break
                    assert node != watcher_node, "every gift went to the watcher's node"
                    await watcher.until(
                        lambda e: e["type"] == "gift" and e["sender_id"] == sender_id
                    )
        assert_ledger_verify_clean(env)

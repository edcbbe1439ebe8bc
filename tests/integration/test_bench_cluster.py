"""`giftwave bench cluster` as an operator runs it, tiny, so that it does not rot: two nodes
behind HAProxy on a scratch PostgreSQL schema and a private Redis, viewers spread by HAProxy,
gifts through both nodes over REST and WebSocket; the JSON says both nodes committed gifts,
viewers on one node saw gifts the other committed, every node told its viewers the true count,
nobody was cut off, and the ledger verifies; the scratch schema is gone afterwards. On SQLite
the command refuses with a message instead of starting anything."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Final

import psycopg
import pytest
from serverproc import giftwave_executable

POSTGRES_URL: Final = os.environ.get(
    "GIFTWAVE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TIMEOUT_S: Final = 120.0
SMOKE: Final = [
    "bench", "cluster", "--nodes", "2", "--viewers", "30", "--gifters", "3",
    "--connections", "2", "--seconds", "2", "--warmup", "1", "--json",
]  # fmt: skip


def _bench(database_url: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTWAVE_")}
    env["GIFTWAVE_DATABASE_URL"] = database_url
    return subprocess.run(
        [giftwave_executable(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def _bench_schemas() -> set[str]:
    with psycopg.connect(POSTGRES_URL) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'giftwave_benchcluster_%'"
        ).fetchall()
    return {name for (name,) in rows}


# HAProxy, two nodes and their load, about 20 s of both cores: the long campaign's (`make
# test-long`); two nodes behind HAProxy are served in `make test` by test_cluster.py.
@pytest.mark.slow
@pytest.mark.long
def test_two_node_cluster_bench_reports_what_it_promises() -> None:
    before = _bench_schemas()  # another run's, if one is going on: not ours to judge
    started = time.monotonic()
    done = _bench(POSTGRES_URL, SMOKE)
    took_s = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)

    assert result["nodes"] == 2
    assert result["verified"] is True
    assert set(result["gifts_per_s_by_node"]) == {"node1", "node2"}
    assert all(rate > 0 for rate in result["gifts_per_s_by_node"].values()), result
    assert result["ws_gifts_per_s"] > 0, result
    assert result["rest_gifts_per_s"] > 0, result
    assert result["gift_errors"] == {}, result
    # HAProxy spread the viewers: each node holds some, and their frames carried gifts the
    # other node committed (the broker's path), timed from the commit.
    assert sorted(result["viewers_by_node"]) == ["node1", "node2"]
    assert all(n > 0 for n in result["viewers_by_node"].values()), result
    assert result["latency_samples_cross_node"] > 0, result
    assert 0 < result["cross_node_latency_ms_p50"] <= result["cross_node_latency_ms_p99"]
    # 30 viewers and 2 x 3 gifters: what each node's viewers were last told.
    assert result["room_sockets"] == 36
    assert result["viewer_counts_by_node"] == {"node1": [36], "node2": [36]}, result
    assert result["viewer_counts_agree"] is True
    assert result["viewers_closed"] == 0, result
    assert result["gifters_closed"] == 0, result
    assert result["cpu_s"]["node1"] > 0, result
    assert result["cpu_s"]["node2"] > 0, result
    assert result["node_cpu_ms_per_gift"] > 0, result
    assert _bench_schemas() <= before, "the scratch schema was left behind"
    print(f"bench cluster smoke: {took_s:.1f} s")


def test_cluster_bench_refuses_sqlite_before_starting_anything(tmp_path: Path) -> None:
    done = _bench(f"sqlite:///{tmp_path}/giftwave.db", ["bench", "cluster", "--json"])
    assert done.returncode == 1
    assert "needs PostgreSQL" in done.stderr
    assert done.stdout == ""

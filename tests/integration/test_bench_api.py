"""`giftwave bench api`, tiny, so that it does not rot.

`--observability-baseline`: two servers (observability on, and off as the baseline) in
alternating rounds; the JSON gives each side's gifts/s and the servers' CPU time per gift, the
cost computed from them, and a ledger that verifies on both scratch databases.

The bare FastAPI baseline (on by default): the same requests to an endpoint taking the same
body, the ratio, and an open loop at half the run's maximum timed on both.

`--against SRC`: a server from another checkout's src (here this one's own), migrated and
verified by that checkout's commands, in rounds alternating with the measured one; the ratio
is the median of the rounds' ratios."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from pathlib import Path
from typing import Any

import pytest
from serverproc import giftwave_executable

import giftwave
from giftwave.bench.api import ApiBenchConfig, run_api_bench

SMOKE = [
    "bench", "api", "--json", "--seconds", "2", "--viewers", "100", "--connections", "4",
    "--observability-baseline", "2", "--no-baseline",
]  # fmt: skip


def _bench(args: list[str], tmp_path: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTWAVE_")}
    env["GIFTWAVE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'bench.db'}"
    done = subprocess.run(
        [giftwave_executable(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


# Two servers loaded to the full in turns, about 25 s of both cores: the long campaign's
# (`make test-long`); the bench's own baseline beside it stays in `make test` (below).
@pytest.mark.long
def test_the_observability_baseline_runs_beside_the_measured_server(tmp_path: Path) -> None:
    result: dict[str, Any] = _bench(SMOKE, tmp_path)
    assert result["verified"] is True
    assert result["errors"] == {}
    assert result["gifts_per_s"] > 0
    assert result["observability_off_gifts_per_s"] > 0
    on, off = result["cpu_us_per_gift"], result["observability_off_cpu_us_per_gift"]
    assert 0 < on < 1_000_000
    assert 0 < off < 1_000_000
    assert result["observability_cost_pct"] == round((on / off - 1) * 100, 1)
    assert len(result["cpu_us_per_gift_rounds"]) == 2
    assert len(result["observability_off_cpu_us_per_gift_rounds"]) == 2
    assert result["baseline_gifts_per_s"] is None  # --no-baseline


def test_the_baselines_run_in_the_same_run(tmp_path: Path) -> None:
    """The bare endpoint and another checkout (here this one's own src, 2 rounds, no pause),
    in one run: one server start fewer than a test each (`make test`'s time)."""
    source = str(Path(giftwave.__file__).resolve().parents[1])  # this checkout's src
    cfg = ApiBenchConfig(
        seconds=1.0,
        viewers=100,
        connections=4,
        warmup_seconds=0.3,
        rate_fraction=0.5,
        against=source,
        rounds=2,
        settle_s=0.0,
    )
    result = run_api_bench(f"sqlite:///{tmp_path / 'bench.db'}", cfg, lambda _: None)
    assert result.verified is True  # all ledgers, the other's by its own `ledger verify`
    assert result.errors == {}
    assert result.baseline_errors == {}
    gifts, bare = result.gifts_per_s, result.baseline_gifts_per_s
    assert gifts > 0
    assert bare is not None
    assert bare > 0
    assert result.baseline_ratio == round(gifts / bare, 3)
    assert result.baseline_cpu_us_per_gift is not None
    assert 0 < result.baseline_cpu_us_per_gift < 1_000_000
    # The open loop at half this run's maximum, on the server and on the bare endpoint alike.
    assert result.open_loop_rate_per_s == round(gifts * 0.5, 1)
    assert result.open_loop_served_per_s
    paced = (result.open_loop_latency_ms_p50, result.open_loop_latency_ms_p99)
    bare_paced = (
        result.baseline_open_loop_latency_ms_p50,
        result.baseline_open_loop_latency_ms_p99,
    )
    for p50, p99 in (paced, bare_paced):
        assert p50 is not None
        assert p99 is not None
        assert 0 < p50 <= p99
    # The other checkout, round by round beside this one.
    assert result.against_errors == {}
    assert result.against_source == source
    assert result.against_gifts_per_s is not None
    assert result.against_gifts_per_s > 0
    assert len(result.against_ratio_rounds) == 2
    assert all(r > 0 for r in result.against_ratio_rounds)
    assert result.against_ratio == round(statistics.median(result.against_ratio_rounds), 3)
    assert result.against_cpu_us_per_gift is not None
    assert result.against_cpu_us_per_gift > 0

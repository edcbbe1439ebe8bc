"""`giftwave bench api --observability-baseline`, tiny, so that it does not rot: two servers
(observability on, and off as the baseline) in alternating rounds; the JSON gives each side's
gifts/s and the servers' CPU time per gift, the cost computed from them, and a ledger that
verifies on both scratch databases."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from serverproc import giftwave_executable

SMOKE = [
    "bench", "api", "--json", "--seconds", "2", "--viewers", "100", "--connections", "4",
    "--observability-baseline", "2",
]  # fmt: skip


def test_the_observability_baseline_runs_beside_the_measured_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTWAVE_")}
    env["GIFTWAVE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'bench.db'}"
    done = subprocess.run(
        [giftwave_executable(), *SMOKE],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
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

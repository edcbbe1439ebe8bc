"""scripts/capacity_model.py: it runs on the committed inputs, splits the per-gift costs the
way its docstring says (known answers), and docs/scaling.md holds exactly the tables it prints
(a figure typed into the page by hand, or inputs changed without the page, fails here)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
SCRIPT: Final = ROOT / "scripts" / "capacity_model.py"
INPUTS: Final = ROOT / "scripts" / "capacity_inputs.toml"


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _inputs() -> dict[str, Any]:
    return tomllib.loads(INPUTS.read_text())


def _load_model() -> Any:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import capacity_model

        return capacity_model
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_docs_scaling_holds_the_tables_the_model_prints() -> None:
    printed = _run()
    page = (ROOT / "docs" / "scaling.md").read_text()
    assert printed.strip() in page, "docs/scaling.md is not what scripts/capacity_model.py prints"


def test_costs_split_from_the_follower_run_with_known_answers() -> None:
    model = _load_model()
    inputs = _inputs()
    inputs["fanout"]["frame_writes_per_core_s"] = 50_000
    # 1,000 gifts in 10 s; node2 wrote 5,000 frames/s (1 CPU s of the 10) and spent 3 s:
    # apply = 2 s / 10,000 gifts = 0.2 ms; node1 spent 7 s: intake = 4 s / 10,000 = 0.4 ms.
    inputs["follower_run"].update(
        gifts_per_s=1000,
        seconds=10,
        node1_cpu_s=7.0,
        node2_cpu_s=3.0,
        node2_frames_per_s=5000,
        redis_cpu_s=0.6,
        postgres_cpu_s=1.0,
    )
    costs = model.costs_from(inputs)
    assert costs.intake_cpu_ms == pytest.approx(0.4)
    assert costs.apply_cpu_ms == pytest.approx(0.2)
    assert costs.redis_xadd_cpu_ms == pytest.approx(0.02)  # one XADD and two reads a gift
    assert costs.redis_read_cpu_ms == pytest.approx(0.02)
    assert costs.postgres_cpu_ms == pytest.approx(0.1)


def test_relaying_a_room_takes_its_events_off_the_edge_nodes() -> None:
    result = json.loads(_run("--json"))
    naive = {r["part"]: r for r in result["tables"]["room_naive"]}
    relayed = {r["part"]: r for r in result["tables"]["room_relayed"]}
    apply, key = "room state (apply)", "Redis, the room's stream key"
    assert relayed[apply]["units"] < naive[apply]["units"] / 10
    # One key lives on one Redis core: more than one core of work on it cannot be served.
    assert naive[key]["units"] > 1
    assert relayed[key]["units"] < 1
    assert result["nodes"]["room_relayed"] <= result["nodes"]["room_naive"]


def test_the_platform_needs_more_than_one_chain_head() -> None:
    result = json.loads(_run("--json"))
    [ledger] = [r for r in result["tables"]["platform"] if r["part"] == "ledger"]
    assert ledger["units"] > 1  # one writer cannot commit the platform's peak


def test_inputs_that_do_not_separate_the_costs_are_refused() -> None:
    model = _load_model()
    inputs = _inputs()
    run = inputs["follower_run"]
    run["node1_cpu_s"] = run["node2_cpu_s"]  # receiving every gift cost nothing: noise
    with pytest.raises(AssertionError, match="re-measure"):
        model.costs_from(inputs)

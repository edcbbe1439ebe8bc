"""`giftwave bench ledger`, tiny, so that it does not rot: the raw write ceiling runs beside the
engine in the same run, on each backend, and the engine's ledger still verifies."""

from __future__ import annotations

from giftwave.bench.ledger import LedgerBenchConfig, run_ledger_bench
from giftwave.db.urls import DatabaseUrl

TINY = LedgerBenchConfig(
    seconds=0.5, viewers=200, concurrency=64, repeat=2, baseline_seconds=0.5, verify=True
)


def test_the_raw_write_ceiling_is_measured_beside_the_engine(bare_db_url: DatabaseUrl) -> None:
    lines: list[str] = []
    result = run_ledger_bench(bare_db_url.url, TINY, lines.append)
    assert result.verified is True
    assert len(result.raw_runs_gifts_per_s) == 2
    assert all(rate > 0 for rate in result.raw_runs_gifts_per_s)
    low, high = min(result.raw_runs_gifts_per_s), max(result.raw_runs_gifts_per_s)
    assert low - 0.1 <= result.raw_ceiling_gifts_per_s <= high + 0.1
    assert result.raw_ratio == round(result.gifts_per_s / result.raw_ceiling_gifts_per_s, 3)
    assert any("raw write of the same rows" in line for line in lines)
    assert any(line.startswith("engine / raw write ceiling: ") for line in lines)

"""`giftwave bench ws-gifts`, tiny, so that it does not rot: the closed loop, an open loop at a
steady rate whose every gift is answered and timed from when it was due, and the search for
the highest rate meeting the p99 target, on one real server (20 viewers: 5 gifts/s each at
most, well within the per-viewer gift rate)."""

from __future__ import annotations

from pathlib import Path

from giftwave.bench.ws_gifts import WsGiftsBenchConfig, run_ws_gifts_bench

TINY = WsGiftsBenchConfig(
    seconds=1.0,
    warmup_seconds=0.5,
    gifters=20,
    window=2,
    baseline=False,
    closed_loop=False,  # 20 sockets as fast as answered would meet the per-viewer gift rate
    rate_per_s=100.0,
    find_rate=True,
    find_rate_start_per_s=50.0,
    step_seconds=0.5,
    find_rate_steps=2,
)


def test_an_open_loop_times_every_gift_from_when_it_was_due(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_ws_gifts_bench(f"sqlite:///{tmp_path / 'base.db'}", TINY, lines.append)
    assert result.verified is True
    assert result.gifts_per_s == 0  # no closed loop asked
    assert result.open_loop_rate_per_s == 100.0
    assert result.open_loop_unanswered == 0
    assert result.open_loop_primed == TINY.gifters  # every socket's first gift, before a step
    assert result.errors == {}
    # 100 gifts/s for 1 s measured: every one answered, none of the warm-up's counted.
    assert result.open_loop_acked_per_s == 100.0
    p50, p99 = result.open_loop_latency_ms_p50, result.open_loop_latency_ms_p99
    assert p50 is not None
    assert p99 is not None
    assert 0 < p50 <= p99
    steps = result.find_rate_steps
    assert [step["rate_per_s"] for step in steps][:1] == [50.0]
    if steps[0]["met"]:  # doubled, then stopped at the step limit
        assert [step["rate_per_s"] for step in steps] == [50.0, 100.0]
    else:  # a miss at the first rate leaves nothing wider than the search's resolution
        assert len(steps) == 1
    met = [step["rate_per_s"] for step in steps if step["met"]]
    assert result.open_loop_max_rate_per_s == (max(met) if met else 0.0)
    assert any(line.startswith("find-rate: ") for line in lines)

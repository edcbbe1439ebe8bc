"""`giftwave bench fanout-floor`, tiny, so that it does not rot: the hub's fan-out and the bare
write loop each measured in every round, on real loopback sockets."""

from __future__ import annotations

from giftwave.bench.fanout_floor import FanoutFloorConfig, run_fanout_floor


def test_hub_and_floor_are_measured_side_by_side() -> None:
    lines: list[str] = []
    cfg = FanoutFloorConfig(viewers=20, frames=3, rounds=2, frame_bytes=200)
    result = run_fanout_floor(cfg, lines.append)
    assert len(result.hub_rounds_us) == len(result.floor_rounds_us) == 2
    assert all(us > 0 for us in result.hub_rounds_us + result.floor_rounds_us)
    assert result.hub_us_per_frame > 0
    assert result.floor_us_per_frame > 0
    assert result.ratio == round(result.hub_us_per_frame / result.floor_us_per_frame, 3)
    assert result.hub_frames_per_core_s == round(1e6 / result.hub_us_per_frame)
    assert [line.split(":")[0] for line in lines] == ["round 1", "round 2"]

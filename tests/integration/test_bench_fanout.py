"""`giftwave bench fanout`, tiny, so that it does not rot: viewers from several client
processes, the server's CPU per delivered frame and the load generator's own CPU on the record
(one point: each point costs a server start, and a curve is the same loop over counts); how
`--viewers` refuses what is not a list of counts; and how a point that misses says why."""

from __future__ import annotations

import subprocess
from pathlib import Path

from serverproc import giftwave_executable

from giftwave.bench.fanout import EMFILE, FanoutBenchConfig, Run, run_fanout_bench

TINY = FanoutBenchConfig(
    viewers=(30,),
    gifts_per_s=50,
    gifters=5,
    seconds=1.0,
    warmup_seconds=0.5,
    sample_every=5,
    baseline=False,
    viewers_per_process=20,
    settle_seconds=0.3,
    drain_seconds=0.7,
)


def test_viewers_come_from_several_processes(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_fanout_bench(f"sqlite:///{tmp_path / 'base.db'}", TINY, lines.append)
    assert result.verified is True
    assert [point["viewers"] for point in result.curve] == [30]
    assert [point["client_processes"] for point in result.curve] == [2]  # 20 a process at most
    for point in result.curve:
        assert point["viewers_connected"] == point["viewers"]
        assert point["viewers_refused"] == 0
        assert point["ticks_missed"] == 0
        assert point["deliveries_per_s"] > 0
        assert point["server_cpu_us_per_frame"] > 0
        assert 0 < point["load_generator_cpu_cores"] < 2
        assert point["latency_ms_p99"] > 0
    assert result.baseline_curve == []
    assert result.viewers == 30  # the flat figures are the first point's
    assert result.server_cpu_us_per_frame == result.curve[0]["server_cpu_us_per_frame"]
    assert any(line.startswith("tick 30 viewers: ") for line in lines)


def test_viewers_is_a_count_or_a_list_of_counts() -> None:
    done = subprocess.run(
        [giftwave_executable(), "bench", "fanout", "--viewers", "5000,ten"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--viewers is a count or a list of counts" in done.stderr


def test_a_point_that_misses_says_which_target_and_why() -> None:
    point = Run(
        mode="tick",
        viewers=20_000,
        viewers_connected=19_880,
        viewers_refused=120,
        frames_per_viewer_per_s=6.1,
        latency_ms_p99=480.0,
        gifts_per_s=1000.0,
        server_cpu_cores=1.0,
        server_main_cpu_cores=0.97,
    )
    point.judge(1000.0, server_log_says_emfile=True)
    assert point.met is False
    assert point.why.startswith(f"120 sockets refused ({EMFILE}: the server's descriptor limit)")
    assert "the tick stretched: 6.1 frames per viewer per second, not 10" in point.why
    assert "its loop at 0.97: the server's event loop is saturated" in point.why
    assert "p99 480.0 ms > 250" in point.why
    starved = Run(mode="tick", viewers=5000, frames_per_viewer_per_s=6.3, server_cpu_cores=0.5)
    starved.server_main_cpu_cores, starved.load_average = 0.44, 7.41
    starved.judge(1000.0, server_log_says_emfile=False)
    assert "its loop at 0.44: the machine is busy (load average 7.41)" in starved.why
    fine = Run(mode="tick", viewers=5000, frames_per_viewer_per_s=10.0, latency_ms_p99=130.0)
    fine.gifts_per_s = 1000.0
    fine.judge(1000.0, server_log_says_emfile=False)
    assert fine.met is True
    assert fine.why == ""
    # Below 500 gifts/s some ticks are empty: fewer frames than ticks is no stretched tick.
    quiet = Run(mode="tick", viewers=50, frames_per_viewer_per_s=4.0, gifts_per_s=50.0)
    quiet.judge(50.0, server_log_says_emfile=False)
    assert quiet.met is True

"""``giftwave bench watermark``: how fast a watermarked download renders, against real time.

The source is made at bench time with FFmpeg's lavfi sources: 30 s of ``testsrc2`` at 1280x720,
30 fps, H.264, with a ``sine`` tone in AAC (a busy moving pattern: no easier to encode than a
real clip). The measured run is the exact command a download job runs
(``clips.media.render_command``: the moving @handle, the 2 s end card, H.264 ``veryfast`` and
AAC in MP4), timed from start to exit. ``watermark_speed_x_realtime`` is the source's length
divided by the render time: above 1, a download is ready before the clip could have played.
FFmpeg's CPU time is reported too, since the wall-clock figure depends on what else runs.
The output is checked (``verified``): decodable, 2 s longer than the source, the same size.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from giftwave.clips.media import END_CARD_S, child_bounds, find_tools, probe, render_command
from giftwave.clips.service import media_limits
from giftwave.config import load_settings

SOURCE_S: Final = 30
SIZE: Final = "1280x720"
FPS: Final = 30
MAKE_TIMEOUT_S: Final = 300
RENDER_TIMEOUT_S: Final = 600
HANDLE: Final = "bench.creator"


@dataclass(frozen=True, slots=True)
class WatermarkBenchResult:
    source_duration_s: float
    source_size: str
    render_s: float
    watermark_speed_x_realtime: float
    render_cpu_s: float  # FFmpeg's user + system time: what the render costs, whatever the load
    speed_x_realtime_per_cpu_s: float
    load_average_1m: float  # other work on the machine slows the wall-clock figure
    output_duration_s: float
    runs: int
    verified: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _make_source(tools_ffmpeg: str, path: Path) -> None:
    subprocess.run(
        [
            tools_ffmpeg,
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={SIZE}:rate={FPS}:duration={SOURCE_S}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={SOURCE_S}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=MAKE_TIMEOUT_S,
    )


def run_watermark_bench(say: Callable[[str], None], repeat: int = 1) -> WatermarkBenchResult:
    tools = find_tools()
    limits = media_limits(load_settings())  # the limits a download job of this server has
    with tempfile.TemporaryDirectory(prefix="giftwave-bench-") as folder:
        source, output = Path(folder) / "source.mp4", Path(folder) / "download.mp4"
        say(f"making a {SOURCE_S} s {SIZE} test clip (testsrc2 + sine)")
        _make_source(tools.ffmpeg, source)
        found = probe(tools, source, limits)
        command = render_command(tools, source, output, HANDLE, found, limits)
        times, cpu = [], []
        load = os.getloadavg()[0]
        for run in range(repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(
                command,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=RENDER_TIMEOUT_S,
                preexec_fn=child_bounds(limits),
            )
            times.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            say(f"run {run + 1}/{repeat}: rendered in {times[-1]:.2f} s")
        rendered = probe(tools, output, limits)
    render_s, cpu_s = statistics.median(times), statistics.median(cpu)
    source_s = found.duration_ms / 1000
    out_s = rendered.duration_ms / 1000
    return WatermarkBenchResult(
        source_duration_s=source_s,
        source_size=f"{found.width}x{found.height}",
        render_s=round(render_s, 3),
        watermark_speed_x_realtime=round(source_s / render_s, 2),
        render_cpu_s=round(cpu_s, 3),
        speed_x_realtime_per_cpu_s=round(source_s / cpu_s, 2),
        load_average_1m=round(load, 2),
        output_duration_s=out_s,
        runs=repeat,
        verified=abs(out_s - source_s - END_CARD_S) < 0.25
        and (rendered.width, rendered.height) == (found.width, found.height),
    )

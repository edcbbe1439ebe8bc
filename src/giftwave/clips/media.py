"""FFmpeg at the boundary: find it, probe a file, and build the commands that cut a recording
and render a watermarked download (with its end card). FFmpeg runs as a subprocess; nothing
here imports the web framework or the database.

    MediaError
    ├── FfmpegMissing   ffmpeg or ffprobe is not on PATH (install the Debian package ffmpeg)
    └── NotAVideo       FFmpeg cannot read or decode the file as MP4 or WebM video
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

PROBE_TIMEOUT_S: Final = 30.0
DECODE_CHECK_TIMEOUT_S: Final = 60.0
END_CARD_S: Final = 2.0
MAX_FPS: Final = 60.0
DEFAULT_FPS: Final = 30.0
# The H.264 preset of the rendered downloads: "veryfast" keeps a 720p render well ahead of
# real time on one or two cores at a size close to "medium" (docs/benchmarks.md).
X264_PRESET: Final = "veryfast"
FONT: Final = "DejaVu Sans"  # fontconfig's name; Debian's ffmpeg pulls fonts-dejavu-core
MP4_CODECS: Final = frozenset({"h264", "hevc", "mpeg4", "av1", "vp9"})
WEBM_CODECS: Final = frozenset({"vp8", "vp9", "av1"})


class MediaError(Exception):
    pass


class FfmpegMissing(MediaError):
    pass


class NotAVideo(MediaError):
    pass


@dataclass(frozen=True, slots=True)
class Tools:
    ffmpeg: str
    ffprobe: str


def find_tools() -> Tools:
    """ffmpeg and ffprobe from PATH, or FfmpegMissing naming the package to install."""
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if ffmpeg is None or ffprobe is None:
        raise FfmpegMissing(
            "clips need ffmpeg and ffprobe on PATH: install the Debian package ffmpeg "
            "(scripts/services.sh does)"
        )
    return Tools(ffmpeg, ffprobe)


@dataclass(frozen=True, slots=True)
class Probe:
    container: str  # "mp4" or "webm"
    content_type: str
    duration_ms: int
    width: int
    height: int
    fps: float
    has_audio: bool


def _fps(rate: str) -> float:
    num, _, den = rate.partition("/")
    try:
        value = float(num) / float(den or "1")
    except (ValueError, ZeroDivisionError):
        return DEFAULT_FPS
    return value if 1.0 <= value <= MAX_FPS else DEFAULT_FPS


def probe(tools: Tools, path: Path) -> Probe:
    """What the file is, checked by decoding its first frame: NotAVideo when FFmpeg cannot."""
    try:
        done = subprocess.run(
            [
                tools.ffprobe,
                "-v",
                "error",
                "-print_format",
                "json",
                "-show_format",
                "-show_streams",
                str(path),
            ],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise NotAVideo("ffprobe took too long to read the file") from exc
    if done.returncode != 0:
        raise NotAVideo("FFmpeg cannot read this file as a video")
    try:
        info = json.loads(done.stdout)
    except ValueError as exc:
        raise NotAVideo("ffprobe answered nonsense") from exc
    formats = set(str(info.get("format", {}).get("format_name", "")).split(","))
    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    if video is None or video.get("disposition", {}).get("attached_pic") == 1:
        raise NotAVideo("the file has no video stream")
    codec = str(video.get("codec_name", ""))
    if "mp4" in formats and codec in MP4_CODECS:
        container, content_type = "mp4", "video/mp4"
    elif "webm" in formats and codec in WEBM_CODECS:
        container, content_type = "webm", "video/webm"
    else:
        raise NotAVideo(f"not an MP4 or WebM video ({','.join(sorted(formats))}, {codec})")
    try:
        duration_s = float(info["format"].get("duration") or video.get("duration") or 0)
        width, height = int(video["width"]), int(video["height"])
    except (KeyError, TypeError, ValueError) as exc:
        raise NotAVideo("the video has no size or duration") from exc
    if duration_s <= 0 or width <= 0 or height <= 0:
        raise NotAVideo("the video has no size or duration")
    _decode_first_frames(tools, path)
    return Probe(
        container=container,
        content_type=content_type,
        duration_ms=round(duration_s * 1000),
        width=width,
        height=height,
        fps=_fps(str(video.get("avg_frame_rate") or video.get("r_frame_rate") or "")),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
    )


def _decode_first_frames(tools: Tools, path: Path) -> None:
    """A header can lie: decode the first second, any error is a file we cannot render."""
    try:
        done = subprocess.run(
            [
                tools.ffmpeg,
                "-v",
                "error",
                "-xerror",
                "-i",
                str(path),
                "-t",
                "1",
                "-map",
                "0:v:0",
                "-f",
                "null",
                "-",
            ],
            capture_output=True,
            timeout=DECODE_CHECK_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise NotAVideo("FFmpeg took too long to decode the file") from exc
    if done.returncode != 0 or done.stderr.strip():
        raise NotAVideo("FFmpeg cannot decode this video")


def _even(n: int) -> int:
    return max(2, n - n % 2)  # H.264 in 4:2:0 needs even sizes


def _text(value: str) -> str:
    """A drawtext text value: escaped for the filter's own syntax and the graph's."""
    for ch in ("\\", "'", ":", "%", ",", ";", "[", "]"):
        value = value.replace(ch, "\\" + ch)
    return value


def render_command(
    tools: Tools, source: Path, output: Path, handle: str, probe_: Probe
) -> list[str]:
    """The watermarked download: the creator's @handle drifting across the frame (bouncing off
    the edges, so no crop or blur of one corner removes it) and a 2 s end card (giftwave and
    the @handle), H.264 and AAC in MP4, progress on stdout (``-progress pipe:1``)."""
    w, h = _even(probe_.width), _even(probe_.height)
    fps = round(probe_.fps, 3)
    tag = _text("@" + handle)
    mark = (
        f"drawtext=font='{FONT}':text='{tag}':fontsize=h/16:fontcolor=white@0.85:"
        "box=1:boxcolor=black@0.35:boxborderw=8:"
        "x='abs(mod(t*90\\,2*(w-tw))-(w-tw))':y='abs(mod(t*55\\,2*(h-th))-(h-th))'"
    )
    card = (
        f"drawtext=font='{FONT}':text='giftwave':fontsize=h/8:fontcolor=white:"
        "x=(w-tw)/2:y=h/2-th,"
        f"drawtext=font='{FONT}':text='{tag}':fontsize=h/14:fontcolor=0xffcc66:"
        "x=(w-tw)/2:y=h/2+th/2"
    )
    audio_main = (
        "[0:a:0]aresample=48000,aformat=channel_layouts=stereo[a0]"
        if probe_.has_audio
        else f"[2:a]atrim=duration={probe_.duration_ms / 1000:.3f}[a0]"
    )
    graph = ";".join(
        [
            f"[0:v:0]scale={w}:{h},setsar=1,fps={fps},format=yuv420p,{mark}[main]",
            f"[1:v]setsar=1,format=yuv420p,{card}[card]",
            audio_main,
            f"[3:a]atrim=duration={END_CARD_S}[a1]",
            "[main][a0][card][a1]concat=n=2:v=1:a=1[v][a]",
        ]
    )
    silence = "anullsrc=r=48000:cl=stereo"
    return [
        tools.ffmpeg,
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-i",
        str(source),
        "-f",
        "lavfi",
        "-i",
        f"color=c=0x101018:s={w}x{h}:r={fps}:d={END_CARD_S}",
        "-f",
        "lavfi",
        "-i",
        silence,
        "-f",
        "lavfi",
        "-i",
        silence,
        "-filter_complex",
        graph,
        "-map",
        "[v]",
        "-map",
        "[a]",
        *_mp4_output(output),
    ]


def _mp4_output(output: Path) -> list[str]:
    """How every clip FFmpeg writes is encoded (H.264 and AAC, streamable MP4), with progress
    on stdout for the job's percent."""
    return [
        "-c:v",
        "libx264",
        "-preset",
        X264_PRESET,
        "-crf",
        "23",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-movflags",
        "+faststart",
        "-progress",
        "pipe:1",
        "-nostats",
        "-f",
        "mp4",
        str(output),
    ]


def cut_command(tools: Tools, url: str, start_s: float, end_s: float, output: Path) -> list[str]:
    """A clip cut from a recording (MP4 or HLS over http(s)), re-encoded to H.264 and AAC.
    Only network protocols are allowed: an HLS playlist cannot make FFmpeg read local files."""
    return [
        tools.ffmpeg,
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-protocol_whitelist",
        "http,https,tcp,tls,crypto",
        "-rw_timeout",
        "15000000",
        "-ss",
        f"{start_s:.3f}",
        "-to",
        f"{end_s:.3f}",
        "-i",
        url,
        "-map",
        "0:v:0",
        "-map",
        "0:a:0?",
        *_mp4_output(output),
    ]


def progress_pct(line: str, total_us: int) -> int | None:
    """The percent done from one line of ``-progress`` output (``out_time_us=…``), or None."""
    key, _, value = line.strip().partition("=")
    if key == "progress" and value == "end":
        return 100
    if key not in ("out_time_us", "out_time_ms") or total_us <= 0:
        return None  # out_time_ms is microseconds too (an old FFmpeg misnomer)
    try:
        done_us = int(value)
    except ValueError:
        return None  # "N/A" before the first frame
    return max(0, min(99, done_us * 100 // total_us))

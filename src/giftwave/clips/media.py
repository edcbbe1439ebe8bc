"""FFmpeg at the boundary: find it, probe a file, and build the commands that cut a recording
and render a watermarked download (with its end card). FFmpeg runs as a subprocess; nothing
here imports the web framework or the database.

    MediaError
    ├── FfmpegMissing   ffmpeg or ffprobe is not on PATH (install the Debian package ffmpeg)
    ├── NotAVideo       FFmpeg cannot read or decode the file as MP4 or WebM video
    └── OverLimit       a video past one of the ``Limits``; ``code`` (a ``Code``) says which

A file is untrusted until checked, and decoding is where it costs memory: a 750 KB H.264 file
can declare 16000x16000 frames (about 860 MB to decode one second, 7.6 GB to render). So a
probe reads the headers first without decoding anything (``-nofind_stream_info``) and checks
them against the ``Limits``; only then does FFmpeg decode, and every FFmpeg or ffprobe child
runs bounded: an address-space ceiling (``RLIMIT_AS``), a few threads, and a decoder that
refuses frames larger than the limit (``-max_pixels``: a stream can change size midway, past
what its header said). A render is scaled down to fit ``render_max_p`` and cut to the probed
length, so its cost follows the capped output, not the input.
"""

from __future__ import annotations

import functools
import json
import math
import resource
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from giftwave.errors import Code

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
# Sound a phone, a camera or a browser records; any other decoder is attack surface we skip.
MP4_AUDIO_CODECS: Final = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})
WEBM_AUDIO_CODECS: Final = frozenset({"opus", "vorbis"})
# A cover picture an MP4 may carry beside the video (``attached_pic``): decoded when probed.
COVER_CODECS: Final = frozenset({"mjpeg", "png"})
# Bits per sample of the pixel formats the allowed decoders give; any other format is refused.
PIXEL_FORMAT_BITS: Final[dict[str, int]] = {
    **dict.fromkeys(
        ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv440p", "yuvj440p", "yuv444p"), 8
    ),
    **dict.fromkeys(("yuvj444p", "yuva420p", "nv12", "gray", "gbrp"), 8),
    **dict.fromkeys(("yuv420p10le", "yuv422p10le", "yuv440p10le", "yuv444p10le"), 10),
    **dict.fromkeys(("p010le", "gray10le", "gbrp10le"), 10),
    **dict.fromkeys(("yuv420p12le", "yuv422p12le", "yuv440p12le", "yuv444p12le"), 12),
    **dict.fromkeys(("gray12le", "gbrp12le"), 12),
}
# What the decoder says when ``-max_pixels`` refuses a frame: a header that lied about the size.
MAX_PIXELS_REFUSED: Final = b"exceeds specified max pixel count"
# Probes decode at most a second of one stream: one thread needs the fewest frames in memory.
PROBE_THREADS: Final = 1


class MediaError(Exception):
    pass


class FfmpegMissing(MediaError):
    pass


class NotAVideo(MediaError):
    pass


class OverLimit(MediaError):
    """A video giftwave will not decode or render: ``code`` names the limit, ``limit`` holds
    its values (for the problem's extra members)."""

    def __init__(self, code: Code, detail: str, **limit: int | float) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Limits:
    """What a clip may be (checked from its headers before a frame is decoded) and what one
    FFmpeg or ffprobe child may use. ``service.media_limits`` builds it from the settings."""

    max_side_px: int
    max_pixels: int
    max_fps: float
    max_duration_ms: int
    max_streams: int
    max_bit_depth: int
    render_max_p: int  # a render fits a 16:9 box this many lines high (upright for portrait)
    threads: int
    memory_bytes: int

    def __post_init__(self) -> None:
        assert self.max_side_px >= 2
        assert self.max_pixels >= 4
        assert self.max_fps > 0
        assert self.max_duration_ms > 0
        assert self.max_streams >= 1
        assert self.max_bit_depth >= 8
        assert self.render_max_p >= 2
        assert self.threads >= 1
        assert self.memory_bytes > 0


def _set_memory_ceiling(memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def child_bounds(limits: Limits) -> Callable[[], None]:
    """The ``preexec_fn`` of every FFmpeg child: its address space capped, so a file that gets
    past the checks still cannot take the machine's memory (the child fails, nothing else).
    It runs in the child between fork and exec, so it does one thing, a system call: nothing
    that could wait on a lock another thread of the server held at the fork."""
    return functools.partial(_set_memory_ceiling, limits.memory_bytes)


def _decoder_bounds(limits: Limits, threads: int) -> list[str]:
    """Input options: the decoder's threads, and frames past the pixel limit refused."""
    return ["-threads", str(threads), "-max_pixels", str(limits.max_pixels)]


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


HEADER_ENTRIES: Final = (
    "format=format_name,duration,nb_streams"
    ":stream=index,codec_type,codec_name,width,height,avg_frame_rate,duration,nb_read_packets"
    ":stream_disposition=attached_pic"
)


def _run_bounded(
    command: list[str], limits: Limits, timeout_s: float, too_long: str
) -> subprocess.CompletedProcess[bytes]:
    """Run an FFmpeg tool on a file, bounded in time and memory; NotAVideo(too_long) past
    the time."""
    try:
        return subprocess.run(
            command,
            capture_output=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
            preexec_fn=child_bounds(limits),
        )
    except subprocess.TimeoutExpired as exc:
        raise NotAVideo(too_long) from exc


def _ffprobe(tools: Tools, limits: Limits, args: list[str], path: Path) -> dict[str, Any]:
    """ffprobe's JSON view of ``path``, bounded in time and memory; NotAVideo if it fails."""
    done = _run_bounded(
        [tools.ffprobe, "-v", "error", *args, "-print_format", "json", str(path)],
        limits,
        PROBE_TIMEOUT_S,
        "ffprobe took too long to read the file",
    )
    if done.returncode != 0:
        _check_refused_frames(done.stderr, limits)
        raise NotAVideo("FFmpeg cannot read this file as a video")
    try:
        info = json.loads(done.stdout)
    except ValueError as exc:
        raise NotAVideo("ffprobe answered nonsense") from exc
    if not isinstance(info, dict):
        raise NotAVideo("ffprobe answered nonsense")
    return info


def _check_refused_frames(stderr: bytes, limits: Limits) -> None:
    """A decoder that refused a frame for ``-max_pixels``: the stream is larger than it said."""
    if MAX_PIXELS_REFUSED in stderr:
        raise OverLimit(
            Code.CLIP_TOO_LARGE_DIMENSIONS,
            f"the video has frames of more than {limits.max_pixels} pixels",
            max_side_px=limits.max_side_px,
            max_pixels=limits.max_pixels,
        )


def _number(value: object) -> float:
    """A number ffprobe printed ("1.000000", "25", "N/A", missing): 0 when it is none."""
    try:
        found = float(str(value))
    except ValueError:
        return 0.0
    return found if math.isfinite(found) else 0.0


def _rate(rate: object) -> float:
    num, _, den = str(rate).partition("/")
    denominator = _number(den or "1")
    return _number(num) / denominator if denominator > 0 else 0.0


def _check_size(width: int, height: int, limits: Limits) -> None:
    if max(width, height) > limits.max_side_px or width * height > limits.max_pixels:
        raise OverLimit(
            Code.CLIP_TOO_LARGE_DIMENSIONS,
            f"a clip is at most {limits.max_side_px} px a side and {limits.max_pixels} pixels "
            f"a frame (this one {width}x{height})",
            max_side_px=limits.max_side_px,
            max_pixels=limits.max_pixels,
        )


def _is_cover(stream: dict[str, Any]) -> bool:
    return bool((stream.get("disposition") or {}).get("attached_pic") == 1)


def check_header(info: dict[str, Any], limits: Limits) -> None:
    """Refuse, from what the container declares (nothing decoded yet), a file that is not MP4
    or WebM video (NotAVideo) or is past a limit (OverLimit)."""
    fmt = info.get("format") or {}
    formats = set(str(fmt.get("format_name", "")).split(","))
    if "mp4" in formats:
        container, video_codecs, audio_codecs = "MP4", MP4_CODECS, MP4_AUDIO_CODECS
    elif "webm" in formats:
        container, video_codecs, audio_codecs = "WebM", WEBM_CODECS, WEBM_AUDIO_CODECS
    else:
        raise NotAVideo(f"not an MP4 or WebM video ({','.join(sorted(formats))})")
    streams = [s for s in info.get("streams") or [] if isinstance(s, dict)]
    count = max(int(_number(fmt.get("nb_streams"))), len(streams))
    if count > limits.max_streams:
        raise OverLimit(
            Code.CLIP_TOO_MANY_STREAMS,
            f"a clip has at most {limits.max_streams} streams (this one {count})",
            max_streams=limits.max_streams,
        )
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    if video is None or _is_cover(video):
        raise NotAVideo("the file has no video stream")
    for stream in streams:
        kind, codec = stream.get("codec_type"), str(stream.get("codec_name") or "unknown")
        if kind == "video":
            allowed = COVER_CODECS if _is_cover(stream) else video_codecs
        elif kind == "audio":
            allowed = audio_codecs
        else:
            continue  # data and subtitles are never decoded for a render
        if codec not in allowed:
            raise OverLimit(
                Code.CLIP_CODEC_NOT_ALLOWED,
                f"{kind} in {codec} is not allowed in {container} "
                f"(allowed: {', '.join(sorted(allowed))})",
            )
        if kind == "video":
            _check_size(
                int(_number(stream.get("width"))), int(_number(stream.get("height"))), limits
            )
    durations_s = [_number(fmt.get("duration"))] + [_number(s.get("duration")) for s in streams]
    if max(durations_s) * 1000 > limits.max_duration_ms:
        raise OverLimit(
            Code.CLIP_TOO_LONG,
            f"a clip lasts at most {limits.max_duration_ms / 1000:g} s "
            f"(this one {max(durations_s):.1f} s)",
            max_duration_s=limits.max_duration_ms / 1000,
        )
    # The header's rate, or frames counted over the length if more: a rate can be left out.
    length_s = _number(video.get("duration")) or _number(fmt.get("duration"))
    counted = _number(video.get("nb_read_packets")) / length_s if length_s > 0 else 0.0
    fps = max(_rate(video.get("avg_frame_rate")), counted)
    if fps > limits.max_fps:
        raise OverLimit(
            Code.CLIP_FRAME_RATE_TOO_HIGH,
            f"a clip has at most {limits.max_fps:g} frames a second (this one {fps:.0f})",
            max_fps=limits.max_fps,
        )


def _check_pixels(video: dict[str, Any], limits: Limits) -> None:
    """The decoder's view of the first frames: their size and pixel format (bit depth)."""
    _check_size(int(_number(video.get("width"))), int(_number(video.get("height"))), limits)
    pix_fmt = str(video.get("pix_fmt") or "unknown")
    if pix_fmt == "unknown":
        raise NotAVideo("FFmpeg cannot decode this video")
    bits = PIXEL_FORMAT_BITS.get(pix_fmt)
    if bits is None:
        raise OverLimit(
            Code.CLIP_PIXEL_FORMAT_NOT_ALLOWED,
            f"the pixel format {pix_fmt} is not one giftwave renders",
        )
    if bits > limits.max_bit_depth:
        raise OverLimit(
            Code.CLIP_BIT_DEPTH_TOO_HIGH,
            f"a clip has at most {limits.max_bit_depth} bits a sample (this one {bits})",
            max_bit_depth=limits.max_bit_depth,
        )


def probe(tools: Tools, path: Path, limits: Limits) -> Probe:
    """What the file is: its headers checked against ``limits`` before anything is decoded,
    then its first frames decoded (bounded): NotAVideo or OverLimit when it will not do."""
    header = ["-nofind_stream_info", "-count_packets", "-show_entries", HEADER_ENTRIES]
    check_header(_ffprobe(tools, limits, header, path), limits)
    decoded = [*_decoder_bounds(limits, PROBE_THREADS), "-show_format", "-show_streams"]
    info = _ffprobe(tools, limits, decoded, path)
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
    _check_pixels(video, limits)
    _decode_first_frames(tools, path, limits)
    return Probe(
        container=container,
        content_type=content_type,
        duration_ms=round(duration_s * 1000),
        width=width,
        height=height,
        fps=_fps(str(video.get("avg_frame_rate") or video.get("r_frame_rate") or "")),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
    )


def _decode_first_frames(tools: Tools, path: Path, limits: Limits) -> None:
    """A header can lie: decode the first second, any error is a file we cannot render."""
    done = _run_bounded(
        [
            tools.ffmpeg,
            "-v",
            "error",
            "-xerror",
            *_decoder_bounds(limits, PROBE_THREADS),
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
        limits,
        DECODE_CHECK_TIMEOUT_S,
        "FFmpeg took too long to decode the file",
    )
    if done.returncode != 0 or done.stderr.strip():
        _check_refused_frames(done.stderr, limits)
        raise NotAVideo("FFmpeg cannot decode this video")


def _even(n: int) -> int:
    return max(2, n - n % 2)  # H.264 in 4:2:0 needs even sizes


def render_size(width: int, height: int, max_p: int) -> tuple[int, int]:
    """The render's size: the source's, scaled down (never up, aspect kept) to fit a 16:9 box
    ``max_p`` lines high (1080: 1920x1080), or the same box upright for a portrait clip."""
    long_px, short_px = max_p * 16 // 9, max_p
    box_w, box_h = (long_px, short_px) if width >= height else (short_px, long_px)
    scale = min(1.0, box_w / width, box_h / height)
    return _even(int(width * scale)), _even(int(height * scale))


def _text(value: str) -> str:
    """A drawtext text value: escaped for the filter's own syntax and the graph's."""
    for ch in ("\\", "'", ":", "%", ",", ";", "[", "]"):
        value = value.replace(ch, "\\" + ch)
    return value


def render_command(
    tools: Tools, source: Path, output: Path, handle: str, probe_: Probe, limits: Limits
) -> list[str]:
    """The watermarked download: the creator's @handle drifting across the frame (bouncing off
    the edges, so no crop or blur of one corner removes it) and a 2 s end card (giftwave and
    the @handle), H.264 and AAC in MP4, progress on stdout (``-progress pipe:1``).
    Bounded by ``limits``: at most ``render_max_p`` lines, the probed length and no more (a
    stream whose timestamps run on past its header is cut), ``threads`` threads."""
    w, h = render_size(probe_.width, probe_.height, limits.render_max_p)
    length_s = probe_.duration_ms / 1000
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
    # Trimmed to the probed length after ``fps``: a last frame may claim to last ten hours, and
    # ``fps`` would repeat it that long while ``concat`` queued the end card's endless inputs.
    audio_main = (
        f"[0:a:0]aresample=48000,aformat=channel_layouts=stereo,atrim=duration={length_s:.3f}[a0]"
        if probe_.has_audio
        else f"[2:a]atrim=duration={length_s:.3f}[a0]"
    )
    graph = ";".join(
        [
            f"[0:v:0]scale={w}:{h},setsar=1,fps={fps},trim=duration={length_s:.3f},"
            f"format=yuv420p,{mark}[main]",
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
        *_decoder_bounds(limits, limits.threads),
        "-t",
        f"{length_s:.3f}",
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
        "-filter_complex_threads",
        str(limits.threads),
        "-filter_complex",
        graph,
        "-map",
        "[v]",
        "-map",
        "[a]",
        "-t",  # the end card included; a second more never cuts a real render short
        f"{length_s + END_CARD_S + 1:.3f}",
        *_mp4_output(output, limits.threads),
    ]


def _mp4_output(output: Path, threads: int) -> list[str]:
    """How every clip FFmpeg writes is encoded (H.264 and AAC, streamable MP4), with progress
    on stdout for the job's percent."""
    return [
        "-threads",
        str(threads),
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


def cut_command(
    tools: Tools, url: str, start_s: float, end_s: float, output: Path, limits: Limits
) -> list[str]:
    """A clip cut from a recording (MP4 or HLS over http(s)), re-encoded to H.264 and AAC.
    Only network protocols are allowed: an HLS playlist cannot make FFmpeg read local files.
    The recording is untrusted too: its decoder refuses frames past the pixel limit."""
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
        *_decoder_bounds(limits, limits.threads),
        "-i",
        url,
        "-map",
        "0:v:0",
        "-map",
        "0:a:0?",
        *_mp4_output(output, limits.threads),
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

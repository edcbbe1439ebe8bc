"""Tiny test videos made with FFmpeg (lavfi testsrc2 + sine), and ffprobe's view of a file.
FFmpeg is required: a machine without it fails these tests (scripts/services.sh installs it)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

FFMPEG_TIMEOUT_S = 60


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is required (Debian package ffmpeg; scripts/services.sh installs it)")
    return found


def make_video(
    path: Path,
    *,
    seconds: float = 2,
    size: str = "320x240",
    audio: bool = True,
    faststart: bool = False,
) -> Path:
    """A test pattern with a tone: H.264/AAC in MP4, or VP8/Vorbis in WebM by the suffix;
    ``faststart``: the MP4's index first, as a recording served over HTTP has it."""
    webm = path.suffix == ".webm"
    args = [tool("ffmpeg"), "-v", "error", "-y", "-f", "lavfi"]
    args += ["-i", f"testsrc2=size={size}:rate=25:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    if webm:
        args += ["-c:v", "libvpx", "-b:v", "300k", "-deadline", "realtime"]
        args += ["-c:a", "libvorbis"] if audio else []
    else:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
        args += ["-c:a", "aac"] if audio else []
        args += ["-movflags", "+faststart"] if faststart else []
    args += ["-shortest", str(path)] if audio else [str(path)]
    subprocess.run(args, check=True, timeout=FFMPEG_TIMEOUT_S, capture_output=True)
    return path


def make_audio(path: Path, seconds: float = 2) -> Path:
    subprocess.run(
        [
            tool("ffmpeg"),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"sine=duration={seconds}",
            str(path),
        ],
        check=True,
        timeout=FFMPEG_TIMEOUT_S,
        capture_output=True,
    )
    return path


@dataclass(frozen=True)
class Probed:
    duration_s: float
    width: int
    height: int
    video_codec: str
    has_audio: bool


def ffprobe(path: Path) -> Probed:
    done = subprocess.run(
        [tool("ffprobe"), "-v", "error", "-of", "json", "-show_format", "-show_streams", str(path)],
        check=True,
        timeout=FFMPEG_TIMEOUT_S,
        capture_output=True,
    )
    info = json.loads(done.stdout)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    return Probed(
        duration_s=float(info["format"]["duration"]),
        width=int(video["width"]),
        height=int(video["height"]),
        video_codec=video["codec_name"],
        has_audio=any(s["codec_type"] == "audio" for s in info["streams"]),
    )


@dataclass(frozen=True)
class Media:
    mp4: Path
    webm: Path
    silent_mp4: Path
    audio: Path
    truncated_mp4: Path
    text: Path


def make_media(folder: Path) -> Media:
    mp4 = make_video(folder / "small.mp4")
    data = mp4.read_bytes()
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: lost
    text = folder / "notes.mp4"
    text.write_text("this is not a video, whatever its name says\n" * 50)
    return Media(
        mp4=mp4,
        webm=make_video(folder / "small.webm"),
        silent_mp4=make_video(folder / "silent.mp4", audio=False),
        audio=make_audio(folder / "tone.m4a"),
        truncated_mp4=truncated,
        text=text,
    )

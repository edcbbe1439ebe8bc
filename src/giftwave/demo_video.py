"""The demo's live video: FFmpeg makes a live HLS stream of a generated scene (test pattern,
a clock, a tone) into a folder the demo's own server serves, and the demo stream's playback URL
points at it, so the room plays video through the same path a real installation uses (a
playback URL, hls.js). giftwave itself never ingests video; this exists for the demo only.

Cheap on purpose, since the demo shares a small machine with the browser looking at it:
640x360 at 15 fps, x264 ``ultrafast``, one thread, 2 s segments, a rolling playlist of five
whose older segments FFmpeg deletes (the folder never holds more than a few hundred KB). The
child runs with an address-space ceiling, dies with the demo (SIGTERM, then SIGKILL) and with
its parent process (``PR_SET_PDEATHSIG`` on Linux), and without ffmpeg the demo runs anyway
with the room's placeholder (``start`` returns None and logs why).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

log = logging.getLogger(__name__)

# Where the demo's server serves the folder: a path on the same site, so the page's policy
# needs nothing beyond 'self' and the address works whatever host name the browser used.
HLS_PATH: Final = "/demo/hls"
PLAYLIST: Final = "live.m3u8"
PLAYBACK_URL: Final = f"{HLS_PATH}/{PLAYLIST}"
WIDTH_PX: Final = 640
HEIGHT_PX: Final = 360
FPS: Final = 15
SEGMENT_S: Final = 2
PLAYLIST_SEGMENTS: Final = 5
VIDEO_KBPS: Final = 500
AUDIO_KBPS: Final = 48
TONE_HZ: Final = 440
MEMORY_BYTES: Final = 512 * 1024 * 1024  # measured ~60 MB resident; a ceiling, not a budget
READY_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 5.0
FONT: Final = "DejaVu Sans"  # fontconfig's name, as the clips' watermark uses
# The served files and how they go out: a live playlist changes every segment, so no cache may
# keep it; a segment never changes once listed.
MEDIA_TYPES: Final = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}
PR_SET_PDEATHSIG: Final = 1
# Looked up here, in the parent: loading a library between fork and exec could wait for a
# lock another thread held at the fork.
_PRCTL: Final = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None


def scene_filters(*, clock: bool) -> str:
    """The picture: SMPTE-like moving test pattern; with ``clock``, the wall clock drawn with
    the font (drawtext needs libfreetype and the font); without, ``testsrc``'s own timecode,
    which needs no font."""
    size = f"{WIDTH_PX}x{HEIGHT_PX}"
    if not clock:
        return f"testsrc=size={size}:rate={FPS}"
    return (
        f"testsrc2=size={size}:rate={FPS},"
        f"drawtext=font='{FONT}':text='giftwave demo  %{{localtime\\:%X}}':"
        "fontsize=28:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=10:"
        "x=(w-tw)/2:y=h-th-30"
    )


def hls_command(ffmpeg: str, folder: Path, *, clock: bool) -> list[str]:
    """FFmpeg writing the live scene as HLS into ``folder`` in real time (``-re``), bounded:
    one encoder thread, a rolling playlist whose old segments are deleted."""
    gop = FPS * SEGMENT_S  # a keyframe starts every segment, so each plays on its own
    return [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-re",
        "-f",
        "lavfi",
        "-i",
        scene_filters(clock=clock),
        "-re",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={TONE_HZ}:sample_rate=44100",
        "-filter_threads",
        "1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-threads",
        "1",
        "-pix_fmt",
        "yuv420p",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
        "-b:v",
        f"{VIDEO_KBPS}k",
        "-maxrate",
        f"{VIDEO_KBPS}k",
        "-bufsize",
        f"{VIDEO_KBPS * 2}k",
        "-c:a",
        "aac",
        "-ac",
        "1",
        "-b:a",
        f"{AUDIO_KBPS}k",
        "-f",
        "hls",
        "-hls_time",
        str(SEGMENT_S),
        "-hls_list_size",
        str(PLAYLIST_SEGMENTS),
        "-hls_flags",
        "delete_segments+independent_segments+temp_file",
        "-hls_segment_filename",
        str(folder / "seg%06d.ts"),
        str(folder / PLAYLIST),
    ]


def _has_drawtext(ffmpeg: str) -> bool:
    """Whether this ffmpeg can draw text and fontconfig knows the font (else: timecode)."""
    fc_match = shutil.which("fc-match")
    try:
        filters = subprocess.run(
            [ffmpeg, "-hide_banner", "-filters"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
        if " drawtext " not in filters or fc_match is None:
            return False
        font = subprocess.run(
            [fc_match, "-f", "%{family}", FONT],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return FONT in font


def _child_bounds() -> None:
    """Between fork and exec: an address-space ceiling, and on Linux a SIGTERM when the demo
    dies (even by SIGKILL), so no encoder is left running. The kernel sends it when the
    *thread* that started the child ends: start it from one that lives as long as the demo.
    System calls only."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(slots=True)
class DemoVideo:
    """A running encoder and its folder; ``stop`` ends both."""

    folder: Path
    process: subprocess.Popen[bytes]
    clock: bool

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> bool:
        """Until the playlist lists a segment (the page plays at once), bounded."""
        deadline = time.monotonic() + timeout_s
        playlist = self.folder / PLAYLIST
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(FileNotFoundError):
                if ".ts" in playlist.read_text():
                    return True
            time.sleep(0.1)
        return False

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        shutil.rmtree(self.folder, ignore_errors=True)


def start(ffmpeg: str | None = None) -> DemoVideo | None:
    """Start the encoder into a fresh temporary folder; None (logged) when ffmpeg is missing
    or will not start: the demo then shows the room's placeholder. Call it from the thread
    that lives as long as the demo (the main one): see ``_child_bounds``."""
    ffmpeg = ffmpeg or shutil.which("ffmpeg")
    if ffmpeg is None:
        log.warning("demo video: ffmpeg is not on PATH, the room shows a placeholder")
        return None
    clock = _has_drawtext(ffmpeg)
    folder = Path(tempfile.mkdtemp(prefix="giftwave-demo-hls-"))
    try:
        process = subprocess.Popen(
            hls_command(ffmpeg, folder, clock=clock),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None,  # its errors go where the demo's go
            preexec_fn=_child_bounds,
        )
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        log.warning("demo video: ffmpeg did not start (%s), the room shows a placeholder", exc)
        return None
    return DemoVideo(folder, process, clock)


class HlsFiles(StaticFiles):
    """The encoder's folder over HTTP: the HLS media types, and a playlist no cache keeps."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        suffix = Path(full_path).suffix
        if suffix in MEDIA_TYPES:
            response.headers["Content-Type"] = MEDIA_TYPES[suffix]
        response.headers["Cache-Control"] = "no-store" if suffix == ".m3u8" else "max-age=60"
        return response

    async def get_response(self, path: str, scope: Scope) -> Response:
        if Path(path).suffix not in MEDIA_TYPES:  # only what FFmpeg writes, nothing else
            return Response(status_code=404)
        return await super().get_response(path, scope)

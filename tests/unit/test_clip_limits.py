"""The clip limits as pure functions of ffprobe's view of a file (no FFmpeg run): where each
limit's edge is, and the size a render is scaled to."""

from __future__ import annotations

from typing import Any

import pytest

from giftwave.clips.media import Limits, NotAVideo, OverLimit, check_header, render_size
from giftwave.errors import Code

LIMITS = Limits(
    max_side_px=4096,
    max_pixels=4096 * 2160,
    max_fps=120.0,
    max_duration_ms=180_000,
    max_streams=8,
    max_bit_depth=8,
    render_max_p=1080,
    threads=2,
    memory_bytes=2048 * 1024**2,
)


def header(
    *,
    video: dict[str, Any] | None = None,
    extra: list[dict[str, Any]] | None = None,
    fmt: dict[str, Any] | None = None,
) -> dict[str, Any]:
    stream = {
        "codec_type": "video",
        "codec_name": "h264",
        "width": 1920,
        "height": 1080,
        "avg_frame_rate": "30/1",
        "duration": "10.000000",
        "nb_read_packets": "300",
        "disposition": {"attached_pic": 0},
    } | (video or {})
    streams = [stream, *(extra or [])]
    base = {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "10.000000"}
    return {"streams": streams, "format": base | {"nb_streams": len(streams)} | (fmt or {})}


def refused(info: dict[str, Any]) -> Code:
    with pytest.raises(OverLimit) as caught:
        check_header(info, LIMITS)
    return caught.value.code


def test_a_phone_clip_passes() -> None:
    audio = {"codec_type": "audio", "codec_name": "aac", "duration": "10.0"}
    data = {"codec_type": "data", "codec_name": "none"}
    check_header(header(video={"width": 2160, "height": 3840}, extra=[audio, data, data]), LIMITS)


@pytest.mark.parametrize(
    ("video", "code"),
    [
        ({"width": 4097, "height": 16}, Code.CLIP_TOO_LARGE_DIMENSIONS),
        ({"width": 4096, "height": 2161}, Code.CLIP_TOO_LARGE_DIMENSIONS),  # sides fine, pixels not
        ({"avg_frame_rate": "121/1", "nb_read_packets": "1210"}, Code.CLIP_FRAME_RATE_TOO_HIGH),
        (
            {"avg_frame_rate": "0/0", "nb_read_packets": "10000"},
            Code.CLIP_FRAME_RATE_TOO_HIGH,
        ),  # counted
        ({"duration": "180.5"}, Code.CLIP_TOO_LONG),  # a stream claims more than the format
        ({"codec_name": "mjpeg"}, Code.CLIP_CODEC_NOT_ALLOWED),
    ],
)
def test_each_limit_is_refused_past_its_edge(video: dict[str, Any], code: Code) -> None:
    assert refused(header(video=video)) is code


def test_the_edges_themselves_pass() -> None:
    check_header(
        header(
            video={
                "width": 4096,
                "height": 2160,
                "avg_frame_rate": "120/1",
                "nb_read_packets": "1200",
            }
        ),
        LIMITS,
    )
    check_header(header(fmt={"duration": "180.0"}, video={"duration": "180.0"}), LIMITS)


def test_streams_codecs_and_containers() -> None:
    many = [{"codec_type": "data"}] * 8
    assert refused(header(extra=many)) is Code.CLIP_TOO_MANY_STREAMS
    assert refused(header(extra=[{"codec_type": "audio", "codec_name": "pcm_s16le"}])) is (
        Code.CLIP_CODEC_NOT_ALLOWED
    )
    webm = {"format_name": "matroska,webm"}
    assert refused(header(fmt=webm)) is Code.CLIP_CODEC_NOT_ALLOWED  # H.264 is not a WebM codec
    check_header(header(fmt=webm, video={"codec_name": "vp9"}), LIMITS)
    with pytest.raises(NotAVideo):
        check_header(header(fmt={"format_name": "avi"}), LIMITS)
    with pytest.raises(NotAVideo):  # only a cover picture
        check_header(
            header(video={"codec_name": "png", "disposition": {"attached_pic": 1}}), LIMITS
        )


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        ((320, 240), (320, 240)),  # never scaled up
        ((1920, 1080), (1920, 1080)),
        ((2560, 1440), (1920, 1080)),
        ((4096, 2160), (1920, 1012)),  # aspect kept, even sizes
        ((2160, 3840), (1080, 1920)),  # upright: the box turns too
        ((16000, 16000), (1080, 1080)),
        ((4096, 2), (1920, 2)),
    ],
)
def test_a_render_fits_the_box(source: tuple[int, int], rendered: tuple[int, int]) -> None:
    assert render_size(*source, LIMITS.render_max_p) == rendered

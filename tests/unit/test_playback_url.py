"""Which playback URLs a stream may name: http(s), rtmp, or a path on this site (the demo's
own encoder, a media server behind the same host), never another host in disguise."""

from __future__ import annotations

import pytest

from giftwave.errors import Invalid
from giftwave.live.streams import check_playback_url


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example/live/index.m3u8",
        "http://127.0.0.1:8888/mystream/index.m3u8",
        "/demo/hls/live.m3u8",
        "/hls/luna/index.m3u8",
    ],
)
def test_a_stream_may_play_from_a_server_or_a_path_here(url: str) -> None:
    check_playback_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "//evil.example/live.m3u8",  # another host, scheme-relative
        "/\\evil.example/live.m3u8",  # a browser reads the backslash as a slash
        "javascript:alert(1)",
        "data:video/mp4;base64,AAAA",
        "live.m3u8",  # relative to the page: depends on where it is shown
        "/hls/\nlive.m3u8",
        "/" + "a" * 1024,
    ],
)
def test_anything_else_is_refused_with_a_stable_code(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_playback_url(url)
    assert refused.value.code == "invalid_playback_url"

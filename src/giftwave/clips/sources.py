"""Where a clip may be cut from: the recording URL a creator gives is fetched by this server,
so it must not reach what only the server can reach (server-side request forgery).

By default a recording may come from any host whose every address is public (globally
routable, by the one rule of ``giftwave.egress``): loopback, private, link-local (cloud
metadata at 169.254.169.254), CGNAT, multicast and reserved addresses are refused, and so are
IPv6 addresses that reach a private IPv4 one through a translator (NAT64, 6to4, mapped).
An operator whose recordings live on their own network (an Owncast or MediaMTX beside
giftwave) names those hosts in ``GIFTWAVE_CLIP_RECORDING_HOSTS``; then only those hosts
(``*.example.org`` for a domain's hosts) are fetched from, private or not.

What this does not cover, written down in docs/clips.md: FFmpeg follows HTTP redirects and the
segment addresses of an HLS playlist, which are not checked here; a host's DNS may change
between the check and the fetch. On a network with internal services, set the allow-list.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from giftwave.egress import HostUnknown, first_not_public, resolve
from giftwave.errors import Code, Invalid

HINT = "an operator can allow a host with GIFTWAVE_CLIP_RECORDING_HOSTS"


def _allowed_by_list(host: str, allowed: Sequence[str]) -> bool:
    for entry in (a.lower() for a in allowed):
        if host == entry or (entry.startswith("*.") and host.endswith(entry[1:])):
            return True
    return False


def check_recording_url(url: str, allowed_hosts: Sequence[str]) -> None:
    """Raise ``Invalid`` unless ``url`` is an http(s) URL this server may fetch a recording
    from. Resolves the host (blocking: call it off the event loop)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise Invalid(Code.INVALID_RECORDING_URL, "the recording URL is malformed") from None
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise Invalid(Code.INVALID_RECORDING_URL, "the recording is an http(s) URL")
    if allowed_hosts:
        if not _allowed_by_list(host, allowed_hosts):
            raise Invalid(
                Code.RECORDING_URL_NOT_ALLOWED,
                f"recordings are fetched only from {', '.join(allowed_hosts)}",
            )
        return
    try:
        addresses = resolve(host, port)
    except HostUnknown:
        raise Invalid(Code.RECORDING_HOST_UNKNOWN, f"the host {host!r} does not resolve") from None
    if first_not_public(addresses) is not None:
        raise Invalid(
            Code.RECORDING_URL_NOT_ALLOWED,
            f"{host!r} is a private, loopback or reserved address; {HINT}",
        )

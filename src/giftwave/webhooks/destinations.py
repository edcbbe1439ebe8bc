"""Where deliveries may go: the registered URL only, http(s), and (unless the operator allows
it) only to public addresses, so that a creator cannot make the server call into its own
network (a database, a cloud metadata service, an admin port on localhost).

The host is checked when the endpoint is registered (its address, or every address its name
resolves to then) and again before every attempt (what the name resolves to then), by the one
rule of ``giftwave.egress``. Between that check and the connection the name could resolve
elsewhere (DNS rebinding): an operator who needs a hard guarantee puts the server behind an
egress firewall as well.
"""

from __future__ import annotations

import asyncio
from typing import Final
from urllib.parse import urlsplit

from giftwave.egress import (
    HostUnknown,
    first_not_public,
    is_local_host,
    is_public,
    resolve_async,
)
from giftwave.errors import Code, Invalid

__all__ = ["DestinationRefused", "check_url", "check_url_resolved", "ensure_public", "is_public"]

URL_MAX_CHARS: Final = 1024


class DestinationRefused(Exception):
    """The endpoint's host is not a public address, and private ones are not allowed."""


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL, if deliveries may go there; ``Invalid`` naming what is wrong otherwise."""
    if not 0 < len(url) <= URL_MAX_CHARS or not url.isascii() or not url.isprintable():
        raise Invalid(
            Code.INVALID_WEBHOOK_URL, f"a webhook URL is 1-{URL_MAX_CHARS} ASCII characters"
        )
    if " " in url:
        raise Invalid(Code.INVALID_WEBHOOK_URL, "a webhook URL has no spaces")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise Invalid(Code.INVALID_WEBHOOK_URL, f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise Invalid(Code.INVALID_WEBHOOK_URL, "a webhook URL starts with https:// or http://")
    host = parts.hostname
    if not host:
        raise Invalid(Code.INVALID_WEBHOOK_URL, "a webhook URL names a host")
    if parts.username is not None or parts.password is not None:
        raise Invalid(Code.INVALID_WEBHOOK_URL, "a webhook URL carries no user or password")
    if parts.fragment:
        raise Invalid(Code.INVALID_WEBHOOK_URL, "a webhook URL has no #fragment")
    if port == 0:
        raise Invalid(Code.INVALID_WEBHOOK_URL, "port 0 is not a port")
    if not allow_private and is_local_host(host):
        raise Invalid(
            Code.WEBHOOK_URL_NOT_ALLOWED,
            f"{host} is not a public address; this server only delivers to public ones",
        )
    return url


async def check_url_resolved(url: str, *, allow_private: bool, timeout_s: float) -> str:
    """``check_url``, and, unless private addresses are allowed, every address the host
    resolves to now must be public: a name that resolves to a private address, or to none,
    is refused at registration (422) rather than at each delivery. Bounded by ``timeout_s``."""
    url = check_url(url, allow_private=allow_private)
    if allow_private:
        return url
    try:
        async with asyncio.timeout(timeout_s):
            await ensure_public(url)
    except DestinationRefused as exc:
        raise Invalid(
            Code.WEBHOOK_URL_NOT_ALLOWED, f"{exc}; this server only delivers to public addresses"
        ) from None
    except TimeoutError:
        raise Invalid(
            Code.WEBHOOK_URL_NOT_ALLOWED, f"the host did not resolve within {timeout_s:g} s"
        ) from None
    return url


async def ensure_public(url: str) -> None:
    """Raise ``DestinationRefused`` unless every address the URL's host resolves to is public."""
    host, port = _host_port(url)
    try:
        addresses = await resolve_async(host, port)
    except HostUnknown as exc:
        raise DestinationRefused(str(exc)) from None
    refused = first_not_public(addresses)
    if refused is not None:
        raise DestinationRefused(f"{host} resolves to {refused}, which is not public")

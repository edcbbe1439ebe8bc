"""Where deliveries may go: the registered URL only, http(s), and (unless the operator allows
it) only to public addresses, so that a creator cannot make the server call into its own
network (a database, a cloud metadata service, an admin port on localhost).

The host is checked when the endpoint is registered (an address literal) and again before every
attempt (what its name resolves to then). Between that check and the connection the name could
resolve elsewhere (DNS rebinding): an operator who needs a hard guarantee puts the server
behind an egress firewall as well.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Final
from urllib.parse import urlsplit

from giftwave.errors import Invalid

URL_MAX_CHARS: Final = 1024
_LOCAL_NAMES: Final = ("localhost", ".localhost", ".local", ".internal", ".home.arpa")
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(Exception):
    """The endpoint's host is not a public address, and private ones are not allowed."""


def is_public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL, if deliveries may go there; ``Invalid`` naming what is wrong otherwise."""
    if not 0 < len(url) <= URL_MAX_CHARS or not url.isascii() or not url.isprintable():
        raise Invalid("invalid_webhook_url", f"a webhook URL is 1-{URL_MAX_CHARS} ASCII characters")
    if " " in url:
        raise Invalid("invalid_webhook_url", "a webhook URL has no spaces")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise Invalid("invalid_webhook_url", f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise Invalid("invalid_webhook_url", "a webhook URL starts with https:// or http://")
    host = parts.hostname
    if not host:
        raise Invalid("invalid_webhook_url", "a webhook URL names a host")
    if parts.username is not None or parts.password is not None:
        raise Invalid("invalid_webhook_url", "a webhook URL carries no user or password")
    if parts.fragment:
        raise Invalid("invalid_webhook_url", "a webhook URL has no #fragment")
    if port == 0:
        raise Invalid("invalid_webhook_url", "port 0 is not a port")
    if not allow_private:
        address = _literal(host)
        if (address is not None and not is_public(address)) or (
            address is None and (host == _LOCAL_NAMES[0] or host.endswith(_LOCAL_NAMES[1:]))
        ):
            raise Invalid(
                "webhook_url_not_allowed",
                f"{host} is not a public address; this server only delivers to public ones",
            )
    return url


async def ensure_public(url: str) -> None:
    """Raise ``DestinationRefused`` unless every address the URL's host resolves to is public."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise DestinationRefused(f"{host} does not resolve: {exc}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if not is_public(address):
            raise DestinationRefused(f"{host} resolves to {address}, which is not public")

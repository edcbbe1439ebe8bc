"""Which addresses this server may connect to on a user's behalf (webhook deliveries, clip
recordings): public ones only, by one rule for every caller (server-side request forgery).

An address is public when it is globally routable unicast. The rule does not lean on the
interpreter's ``is_global`` alone: its tables differ between Python versions, and in 3.11 they
call NAT64 (``64:ff9b::/96``), 6to4 (``2002::/16``) and IPv4-compatible (``::a.b.c.d``)
addresses global, though each can reach a private IPv4 address through a translator. So:

- an IPv6 address that carries an IPv4 one it reaches (IPv4-mapped ``::ffff:a.b.c.d``, NAT64's
  well-known prefix, 6to4) is judged by that IPv4 address;
- the special-purpose blocks of IANA's registries below are refused outright, Teredo and
  local-use NAT64 (whose embedding the operator chooses) among them;
- IPv6 outside global unicast (``2000::/3``) is refused;
- and what is left must still be ``is_global`` (never multicast) for the interpreter too.

Names are resolved with ``socket.getaddrinfo`` (on a thread from async code), and a name is
allowed only if every address it resolves to is public.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Final

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4_REFUSED: Final = tuple(
    ipaddress.IPv4Network(block)
    for block in (
        "0.0.0.0/8",  # "this network": 0.0.0.0 reaches the host itself on Linux
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT (shared address space)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local: cloud metadata at 169.254.169.254
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments (and NAT64 discovery)
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
_V6_REFUSED: Final = tuple(
    ipaddress.IPv6Network(block)
    for block in (
        "::/96",  # unspecified, loopback, IPv4-compatible (deprecated: ::127.0.0.1)
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b:1::/48",  # local-use NAT64: the network's own prefix and embedding
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments: Teredo 2001::/32, ORCHID, benchmarking
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing (SRv6) SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_V6_GLOBAL_UNICAST: Final = ipaddress.IPv6Network("2000::/3")
_NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR: Final = ipaddress.IPv6Network("2002::/16")


class HostUnknown(Exception):
    """The name does not resolve (or resolves to nothing an address can be read from)."""


def parse_address(text: str) -> IpAddress | None:
    """An address literal (an IPv6 zone, ``%eth0``, dropped: it is not part of the address),
    or None for anything else, such as a name."""
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches through a translator, if it carries one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


def is_public(address: IpAddress) -> bool:
    """May this server connect to ``address`` for a user? Only globally routable unicast."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:  # a zone only ever qualifies a non-global address
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
        if address not in _V6_GLOBAL_UNICAST or any(address in b for b in _V6_REFUSED):
            return False
    elif any(address in block for block in _V4_REFUSED):
        return False
    return address.is_global and not address.is_multicast


def _addresses(host: str, infos: list[tuple[object, ...]]) -> list[IpAddress]:
    found = [parse_address(str(info[4][0])) for info in infos]  # type: ignore[index]
    addresses = [a for a in found if a is not None]
    if not addresses or len(addresses) != len(found):
        raise HostUnknown(f"{host} resolves to no address giftwave can judge")
    return addresses


def resolve(host: str, port: int) -> list[IpAddress]:
    """Every address ``host`` stands for (a literal is itself). Blocking: not on the loop."""
    literal = parse_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # gaierror is an OSError
        raise HostUnknown(f"{host} does not resolve: {exc}") from None
    return _addresses(host, list(infos))


async def resolve_async(host: str, port: int) -> list[IpAddress]:
    """``resolve`` for the event loop, on a thread. Not ``loop.getaddrinfo``: under uvloop that
    is libuv's resolver in C, and every lookup of a user's host should go through one place."""
    return await asyncio.to_thread(resolve, host, port)


# Names that only ever mean this host or its own network, refused without a lookup.
LOCAL_NAMES: Final = ("localhost", ".localhost", ".local", ".internal", ".home.arpa")


def is_local_host(host: str) -> bool:
    """A host part of a URL that is, without a lookup, not public: an address literal that is
    not public, or a local-only name. (A name that resolves inside is caught on resolving.)"""
    address = parse_address(host)
    if address is not None:
        return not is_public(address)
    return host == LOCAL_NAMES[0] or host.endswith(LOCAL_NAMES[1:])


def first_not_public(addresses: list[IpAddress]) -> IpAddress | None:
    """The first address that is not public, or None when all of them are."""
    return next((a for a in addresses if not is_public(a)), None)

"""A stub resolver for the servers of the security tests: Python imports this module at the
start of every process whose PYTHONPATH holds this folder.

``socket.getaddrinfo`` answers the names of ``STUB_DNS_HOSTS`` (JSON: name → list of address
literals) with those addresses, address literals as themselves, and every other name with
"unknown name": a server under test never asks a real DNS server, and a name can stand for any
address (NAT64, 6to4, a public one) without anything connecting to it. asyncio's resolver
calls ``socket.getaddrinfo`` on a thread, so it answers from here too.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from typing import Any

_HOSTS: dict[str, list[str]] = json.loads(os.environ.get("STUB_DNS_HOSTS", "{}"))
_system_getaddrinfo = socket.getaddrinfo


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


def _stub_getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[Any]:
    name = host.decode() if isinstance(host, bytes) else host
    if name is None or _literal(name):  # no lookup: the system parses it
        return _system_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
    addresses = _HOSTS.get(name.lower().rstrip("."))
    if addresses is None:
        raise socket.gaierror(socket.EAI_NONAME, f"stub resolver: no such name {name!r}")
    number = int(port) if port not in (None, "") else 0
    found = []
    for text in addresses:
        address = ipaddress.ip_address(text)
        if address.version == 4 and family in (0, socket.AF_INET):
            found.append((socket.AF_INET, type or socket.SOCK_STREAM, proto, "", (text, number)))
        elif address.version == 6 and family in (0, socket.AF_INET6):
            sockaddr = (text, number, 0, 0)
            found.append((socket.AF_INET6, type or socket.SOCK_STREAM, proto, "", sockaddr))
    if not found:
        raise socket.gaierror(socket.EAI_NONAME, f"stub resolver: no address for {name!r}")
    return found


if "STUB_DNS_HOSTS" in os.environ:  # only the processes the tests start with it
    socket.getaddrinfo = _stub_getaddrinfo

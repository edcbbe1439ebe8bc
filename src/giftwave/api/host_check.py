"""Which ``Host`` a request may name: the allow-list, checked before anything else answers.

With no ``GIFTWAVE_PUBLIC_URL`` the absolute URLs giftwave hands out (the overlay's, the
checkout's return, share links) are built from the request's ``Host``, which the caller
chooses; and a DNS name an attacker controls can be pointed at 127.0.0.1, so that a page of
theirs talks to a server on the visitor's machine as "their" site (DNS rebinding). Both end at
a request whose Host is not one of ours: it is refused, 400 ``unknown_host``, before the
router and before the fast lanes (``Giftwave.__call__``). The cost is a set lookup: Host
values seen allowed (a name with its port) are remembered, a bounded set.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from starlette.types import Receive, Scope, Send

from giftwave.api.problems import problem_response
from giftwave.api.security_headers import COMMON_HEADERS
from giftwave.config import Settings
from giftwave.errors import Code

# The name the app calls itself by in-process (the sandbox's webhooks with no public URL, the
# demo's seeding): never a request from the network. ".internal" is reserved for private use,
# so it names no host an attacker could own.
IN_PROCESS_HOST: Final = "giftwave.internal"
SEEN_MAX: Final = 256  # Host values (name:port) remembered as allowed; the rest are parsed
# Load balancers ask a node by its own address, which no list names; the answer holds no URL.
UNCHECKED_PATHS: Final = frozenset({"/healthz", "/readyz"})


def host_name(host: str) -> str:
    """The name in a Host header, without its port, lower case ("[::1]:8000" → "[::1]")."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.partition(":")[0]


class AllowedHosts:
    """The configured names, the public URL's, the in-process one."""

    def __init__(self, settings: Settings) -> None:
        names = set(settings.allowed_hosts) | {IN_PROCESS_HOST}
        if settings.public_url:
            names.add(host_name(urlsplit(settings.public_url).netloc.rpartition("@")[2]))
        self.names: Final = frozenset(names)
        self._seen: set[bytes] = set()

    def allows(self, scope: Scope) -> bool:
        """A request without a Host header is let through: URLs are then built from the
        address the server listens on, which no caller chooses."""
        for name, value in scope["headers"]:
            if name == b"host":
                return value in self._seen or self._check(value)
        return True

    def _check(self, value: bytes) -> bool:
        if host_name(value.decode("latin-1")) not in self.names:
            return False
        if len(self._seen) < SEEN_MAX:
            self._seen.add(value)
        return True


async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
    """A request naming a host this server is not: 400 problem+json (a socket: closed)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": "unknown host"})
        return
    response = problem_response(
        400, Code.UNKNOWN_HOST, "this server does not answer for that host name (Host header)"
    )
    response.raw_headers.extend(COMMON_HEADERS)
    await response(scope, receive, send)

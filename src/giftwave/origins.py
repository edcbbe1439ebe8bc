"""A web origin (``scheme://host[:port]``) as browsers write it in ``Origin``: one rule for the
settings that name origins (``GIFTWAVE_ALLOWED_ORIGINS``) and for the sockets that check them
(``api/origins.py``). Pure: the settings may use it without importing the web face."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

DEFAULT_PORTS: Final = {"http": 80, "https": 443}
MAX_ORIGIN_CHARS: Final = 2048


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` as browsers write it (lower case, no default port), or None
    when ``value`` is not an http(s) origin (a path, a query, a login, "null")."""
    if not 0 < len(value) <= MAX_ORIGIN_CHARS:
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host or parts.username is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6
    return (
        f"{scheme}://{host}"
        if port in (None, DEFAULT_PORTS[scheme])
        else (f"{scheme}://{host}:{port}")
    )

"""Which web pages may act through a room's WebSocket with the visitor's session cookie.

A browser sends the site's cookie with a WebSocket opened by any page, of any site, and no
same-origin rule stops that page from reading the socket and writing to it: without a check,
a page elsewhere sends gifts and chat as whoever visits it (cross-site WebSocket hijacking).
What the browser does send, and a page cannot change, is ``Origin``. A cookie socket acts only
when its origin is the site's own (``GIFTWAVE_PUBLIC_URL``, or the request's ``Host`` when that
is unset) or one the operator allows (``GIFTWAVE_ALLOWED_ORIGINS``); any other may watch.

A socket opened with a ticket (``?ticket=``) needs no such check: a ticket is asked for with
credentials a foreign page does not have (a bearer token, or the cookie plus the CSRF header,
which a cross-origin request cannot send without CORS, and giftwave allows none).
A handshake without ``Origin`` is not a browser's, so not a page's either.
"""

from __future__ import annotations

from giftwave.origins import normalize_origin


def _authority(origin: str) -> str:
    return origin.split("://", 1)[1]


class OriginPolicy:
    """The origins whose pages act with the cookie: the site's own and the allowed ones."""

    __slots__ = ("_allowed", "_public")

    def __init__(self, public_url: str | None, allowed: tuple[str, ...]) -> None:
        self._public = None if public_url is None else normalize_origin(public_url)
        self._allowed = frozenset(allowed)  # normalized by the settings

    def may_act(self, origin: str | None, host: str | None, secure: bool) -> bool:
        """Whether a cookie socket with this ``Origin`` header may act; ``host`` is the
        request's ``Host`` header, ``secure`` whether it came in over TLS."""
        if origin is None:
            return True  # not a browser: no page is behind it
        seen = normalize_origin(origin)
        if seen is None:
            return False  # "null" (a sandboxed frame, a file) or garbage
        if seen in self._allowed:
            return True
        if self._public is not None:
            return seen == self._public
        if not host:
            return False
        own = normalize_origin(("https://" if secure else "http://") + host)
        # Host and port, not the scheme: behind a proxy that ends TLS the request arrives as
        # plain ws while the page is https on the same host and port.
        return own is not None and _authority(seen) == _authority(own)

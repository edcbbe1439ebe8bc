"""The operator's VAPID key (RFC 8292): what signs each push request, so that a push service
knows the pushes to a subscription come from the server the browser subscribed with.

The private key is a P-256 scalar, 32 bytes in base64url (``giftwave push keys``); the public
key (65 bytes, uncompressed point, base64url) is what pages pass to ``pushManager.subscribe``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02  # type: ignore[import-untyped]

TOKEN_LIFETIME_S: Final = 12 * 3600  # RFC 8292: at most 24 h; half leaves room for clock skew


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_private_key() -> str:
    """A new VAPID private key, 32 bytes in base64url."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def origin_of(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True, slots=True)
class VapidKey:
    private_b64: str = field(repr=False)  # never in a log line
    subject: str

    @property
    def public_b64(self) -> str:
        """The application server key a page subscribes with."""
        point = self._vapid().public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    def _vapid(self) -> Vapid02:
        return Vapid02.from_raw(self.private_b64.encode())

    def authorization(self, endpoint: str, now_s: int) -> str:
        """The ``Authorization: vapid t=…, k=…`` header for one push to ``endpoint``."""
        claims = {"aud": origin_of(endpoint), "exp": now_s + TOKEN_LIFETIME_S, "sub": self.subject}
        header: str = self._vapid().sign(claims)["Authorization"]
        return header

    def signing_key(self, purpose: str) -> bytes:
        """A secret derived from the private key for one purpose only (unsubscribe links)."""
        return hmac.new(b64url_decode(self.private_b64), purpose.encode(), hashlib.sha256).digest()

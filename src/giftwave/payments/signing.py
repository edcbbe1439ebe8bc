"""Webhook signatures in the scheme Stripe uses: ``t=<unix s>,v1=<hex HMAC-SHA256>`` over
``"<t>.<body>"``. The timestamp inside the signature is what stops a replay of an old delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from giftwave.errors import Code
from giftwave.payments.base import WebhookRejected


def signature_header(secret: str, payload: bytes, timestamp_s: int | None = None) -> str:
    ts = int(time.time()) if timestamp_s is None else timestamp_s
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify_signature(
    secret: str,
    payload: bytes,
    header: str | None,
    *,
    tolerance_s: int,
    now_s: float | None = None,
) -> None:
    if not header:
        raise WebhookRejected(Code.MISSING_SIGNATURE, "the webhook carries no signature header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        ts = int(parts["t"][0])
    except (KeyError, ValueError):
        raise WebhookRejected(Code.MALFORMED_SIGNATURE, "the signature has no timestamp") from None
    expected = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, given) for given in parts.get("v1", [])):
        raise WebhookRejected(Code.BAD_SIGNATURE, "the webhook signature does not match")
    now = time.time() if now_s is None else now_s
    if abs(now - ts) > tolerance_s:
        raise WebhookRejected(
            Code.STALE_WEBHOOK, f"the webhook timestamp is more than {tolerance_s} s away"
        )

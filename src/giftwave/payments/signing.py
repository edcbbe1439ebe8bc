"""Webhook signatures in the scheme Stripe uses: ``t=<unix s>,v1=<hex HMAC-SHA256>`` over
``"<t>.<body>"``. The timestamp inside the signature is what stops a replay of an old delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any, Final

import orjson

from giftwave.errors import Code
from giftwave.payments.base import WebhookRejected

SIGNATURE_HEADER: Final = "Giftwave-Sandbox-Signature"


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


def verified_event(
    secret: str, payload: bytes, headers: Mapping[str, str], *, tolerance_s: int
) -> tuple[object, str, dict[str, Any]]:
    """A sandbox provider's signed event, once its signature holds: (id, type, data).
    ``WebhookRejected`` for a forged, stale or malformed one; the caller checks its fields."""
    verify_signature(
        secret,
        payload,
        headers.get(SIGNATURE_HEADER.lower()) or headers.get(SIGNATURE_HEADER),
        tolerance_s=tolerance_s,
    )
    try:
        body: Any = orjson.loads(payload)
        event_id, kind, data = body["id"], body["type"], body["data"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise WebhookRejected(Code.MALFORMED_WEBHOOK, f"not a sandbox event: {exc}") from None
    if not isinstance(kind, str) or not isinstance(data, dict):
        raise WebhookRejected(Code.MALFORMED_WEBHOOK, "the event type or data is malformed")
    return event_id, kind, data

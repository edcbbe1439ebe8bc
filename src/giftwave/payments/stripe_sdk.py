"""What both Stripe adapters (Checkout for top-ups, Connect for payouts) share: the SDK's
client over giftwave's async transport, signed events verified and decoded into plain dicts,
Stripe's minor unit per currency, and the checked reading of an event's fields.

Amounts cross this boundary in Stripe's minor unit, which is not always giftwave's
(``money.py``): ``stripe_amount`` and ``giftwave_amount`` convert, both ways, exactly.

The SDK's objects are not dicts (v13+): an event is decoded from ``Event.to_dict()``, with
every field checked, so a surprising shape is ``malformed_webhook``, never a 500.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Mapping
from typing import Any, Final

import httpx
import stripe

from giftwave import money
from giftwave.errors import Code
from giftwave.payments.base import WebhookRejected

SIGNATURE_HEADER: Final = "stripe-signature"
MAX_NETWORK_RETRIES: Final = 2
# A buyer waits for a checkout and an admin for a payout's transfer: give up long before the
# SDK's default of 80 s (GIFTWAVE_STRIPE_REQUEST_TIMEOUT_S).
REQUEST_TIMEOUT_S: Final = 15.0

# Stripe's own minor unit per currency, the provider's contract (docs.stripe.com/currencies):
# two decimals unless listed. ISK is zero-decimal at Stripe but, for backwards compatibility,
# sent with two (5 ISK is 500, a multiple of 100); HUF and TWD charge with two as well.
STRIPE_ZERO_DECIMAL: Final = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"}
    | {"PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
STRIPE_THREE_DECIMAL: Final = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])  # last digit 0


def stripe_exponent(currency: str) -> int:
    if currency in STRIPE_ZERO_DECIMAL:
        return 0
    return 3 if currency in STRIPE_THREE_DECIMAL else 2


def _shift(currency: str) -> tuple[int, int]:
    """(factor, +1) when Stripe's unit is finer than giftwave's, (factor, -1) when coarser."""
    digits = stripe_exponent(currency) - money.exponent(currency)
    return int(10 ** abs(digits)), 1 if digits >= 0 else -1


def stripe_amount(amount_minor: int, currency: str) -> int:
    """giftwave's amount (its minor unit) as Stripe's ``amount``; ValueError when Stripe
    could not move it exactly."""
    factor, direction = _shift(currency)
    if direction < 0 and amount_minor % factor:
        raise ValueError(f"{amount_minor} is finer than Stripe's {currency} unit")
    amount = amount_minor * factor if direction > 0 else amount_minor // factor
    if currency in STRIPE_THREE_DECIMAL and amount % 10:
        raise ValueError(f"Stripe charges {currency} in multiples of 10, not {amount}")
    return amount


def giftwave_amount(amount: int, currency: str) -> int:
    """Stripe's amount (its minor unit) in giftwave's; ValueError when it is not whole there."""
    factor, direction = _shift(currency)
    if direction > 0 and amount % factor:
        raise ValueError(f"{amount} is finer than giftwave's {currency} unit")
    return amount // factor if direction > 0 else amount * factor


class _AsyncHttpx(stripe.HTTPClient):
    """The SDK's transport, async only, over httpx.

    The SDK's own ``HTTPXClient`` posts its form body as httpx's ``data=<str>``, deprecated
    (a DeprecationWarning on every request) and gone in httpx 1.0; so giftwave plugs in its
    own client, the SDK's documented extension point. Retries and backoff stay the SDK's.
    """

    name = "giftwave-httpx"

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._client = httpx.AsyncClient(
            timeout=timeout_s, verify=ssl.create_default_context(cafile=stripe.ca_bundle_path)
        )

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        try:
            response = await self._client.request(
                method, url, headers=dict(headers), content=post_data
            )
        except httpx.HTTPError as exc:
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
                f"Stripe could not be reached ({type(exc).__name__}: {exc})", should_retry=True
            ) from exc
        return response.content, response.status_code, response.headers

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        raise NotImplementedError("giftwave calls Stripe asynchronously only")

    def sleep_async(self, secs: float) -> Awaitable[None]:
        return asyncio.sleep(secs)

    def close(self) -> None:
        pass  # nothing synchronous to close

    async def close_async(self) -> None:
        await self._client.aclose()


class StripeApi:
    """The SDK's client for one API key, with its transport; ``close`` when done."""

    def __init__(self, api_key: str, *, timeout_s: float, api_base: str | None) -> None:
        base_addresses: Any = {"api": api_base.rstrip("/")} if api_base else None
        self._http = _AsyncHttpx(timeout_s)
        self.client = stripe.StripeClient(
            api_key,
            base_addresses=base_addresses,
            max_network_retries=MAX_NETWORK_RETRIES,
            http_client=self._http,
        )

    async def close(self) -> None:
        await self._http.close_async()

    def verified_event(
        self, payload: bytes, headers: Mapping[str, str], secrets: tuple[str, ...], tolerance_s: int
    ) -> dict[str, Any]:
        """The event of a delivery signed with one of ``secrets`` (one per Stripe endpoint
        that sends here) within ``tolerance_s``, as a dict; else ``WebhookRejected``."""
        signature = headers.get(SIGNATURE_HEADER) or headers.get("Stripe-Signature")
        if not signature:
            raise WebhookRejected(Code.MISSING_SIGNATURE, "the webhook carries no Stripe-Signature")
        rejected: WebhookRejected | None = None
        for secret in secrets:
            try:
                event = self.client.construct_event(
                    payload, signature, secret, tolerance=tolerance_s
                )
                body: dict[str, Any] = event.to_dict()
                return body
            except stripe.SignatureVerificationError as exc:
                # The SDK checks the signature before the timestamp; only its message tells
                # which. A stale delivery signed with this secret is stale whatever the rest.
                if "tolerance" in str(exc):
                    raise WebhookRejected(Code.STALE_WEBHOOK, f"Stripe signature: {exc}") from None
                rejected = WebhookRejected(Code.BAD_SIGNATURE, f"Stripe signature: {exc}")
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                # Not UTF-8, not JSON, or JSON that is not an object.
                raise WebhookRejected(
                    Code.MALFORMED_WEBHOOK, f"not a Stripe event: {exc}"
                ) from None
        assert rejected is not None, "at least one secret"
        raise rejected


def malformed(detail: str) -> WebhookRejected:
    return WebhookRejected(Code.MALFORMED_WEBHOOK, f"unexpected event shape: {detail}")


def event_parts(body: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]]:
    """An event's id, type and ``data.object``; ``malformed_webhook`` when one is missing."""
    event_id = body.get("id")
    event_type = body.get("type")
    data = body.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not (isinstance(event_id, str) and event_id and isinstance(event_type, str)):
        raise malformed("the event has no id or type")
    if not isinstance(obj, Mapping):
        raise malformed("the event has no data.object")
    return event_id, event_type, obj


def text(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if isinstance(value, Mapping):  # an expanded object: its id
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise malformed(f"{name} is {value!r}")
    return value


def amount(obj: Mapping[str, Any], name: str) -> int:
    """The amount ``name`` in giftwave's minor unit of the object's currency."""
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise malformed(f"{name} is {value!r}")
    try:
        return giftwave_amount(value, currency(obj))
    except ValueError as exc:
        raise malformed(str(exc)) from None


def currency(obj: Mapping[str, Any]) -> str:
    value = obj.get("currency")
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise malformed(f"currency is {value!r}")
    return value.upper()


def metadata(obj: Mapping[str, Any], name: str) -> str | None:
    found = obj.get("metadata")
    value = found.get(name) if isinstance(found, Mapping) else None
    return value if isinstance(value, str) and value else None

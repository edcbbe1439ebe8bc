"""How a sandbox provider delivers its webhooks, like a real one: signed (payments/signing.py),
POSTed over HTTP, retried with backoff in the background until giftwave answers 2xx."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import httpx

from giftwave.background import cancel
from giftwave.errors import Code
from giftwave.payments.base import ProviderUnavailable
from giftwave.payments.signing import SIGNATURE_HEADER, signature_header

log = logging.getLogger(__name__)

DELIVERY_ATTEMPTS: Final = 6
DELIVERY_FIRST_BACKOFF_S: Final = 0.2
DELIVERY_TIMEOUT_S: Final = 10.0
MAX_DELIVERIES_IN_FLIGHT: Final = 1000


class SignedSender:
    def __init__(self, *, secret: str, client: httpx.AsyncClient, url: str) -> None:
        self._secret = secret
        self._client = client
        self._url = url
        self._retries: set[asyncio.Task[None]] = set()

    async def deliver(self, payload: bytes) -> bool:
        """Deliver one event now; if giftwave does not take it, keep retrying in the background.

        True when the first attempt was accepted (the page can say "done" at once).
        """
        if await self._attempt(payload):
            return True
        if len(self._retries) >= MAX_DELIVERIES_IN_FLIGHT:
            raise ProviderUnavailable(Code.SANDBOX_BUSY, "too many webhook deliveries are retrying")
        task = asyncio.create_task(self._retry(payload))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)
        return False

    async def close(self) -> None:
        for task in list(self._retries):
            await cancel(task)

    async def _attempt(self, payload: bytes) -> bool:
        headers = {
            SIGNATURE_HEADER: signature_header(self._secret, payload),
            "Content-Type": "application/json",
        }
        try:
            response = await self._client.post(
                self._url, content=payload, headers=headers, timeout=DELIVERY_TIMEOUT_S
            )
        except httpx.HTTPError as exc:
            log.warning("sandbox webhook delivery failed: %s", exc)
            return False
        return response.is_success

    async def _retry(self, payload: bytes) -> None:
        delay = DELIVERY_FIRST_BACKOFF_S
        for _ in range(DELIVERY_ATTEMPTS - 1):
            await asyncio.sleep(delay)
            if await self._attempt(payload):
                return
            delay *= 2
        log.error("sandbox webhook given up after %d attempts", DELIVERY_ATTEMPTS)

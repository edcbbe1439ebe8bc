"""The request observer counts in plain dicts and adds up into Prometheus later: what a scrape
sees after a flush must be exactly what one ``inc``/``observe`` per request would have made."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from starlette.types import Message, Receive, Scope, Send

from giftwave import metrics
from giftwave.api import request_observer
from giftwave.api.request_observer import GIFT_TEMPLATE, LANE_KEY, ObserveRequests

LATENCIES_S = (0.0001, 0.0005, 0.0007, 0.003, 0.004, 0.2, 3.0, 42.0)


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _observer(status: int) -> ObserveRequests:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return ObserveRequests(app)


async def _request(observer: ObserveRequests) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/streams/x/gifts", "headers": []}
    scope[LANE_KEY] = GIFT_TEMPLATE
    await observer(scope, receive, send)
    return sent


def test_a_flush_writes_exactly_what_observing_each_request_would() -> None:
    observer = _observer(418)
    labels = {"route": GIFT_TEMPLATE, "method": "POST", "status": "418"}
    before = _sample("giftwave_http_requests_total", labels)
    reference = Histogram("reference_seconds", "", buckets=metrics.HTTP_BOUNDS_S[:-1],
                          registry=CollectorRegistry())  # fmt: skip
    timer = metrics.HTTP_REQUEST_DURATION.labels(GIFT_TEMPLATE)
    buckets_before = [b.get() for b in timer._buckets]
    sum_before = timer._sum.get()

    async def go() -> None:
        for seconds in LATENCIES_S:
            observer._observe({LANE_KEY: GIFT_TEMPLATE, "method": "POST"}, 418, seconds)
            reference.observe(seconds)
        assert _sample("giftwave_http_requests_total", labels) == before  # not yet written
        observer.flush()

    asyncio.run(go())
    assert _sample("giftwave_http_requests_total", labels) == before + len(LATENCIES_S)
    moved = [b.get() - was for b, was in zip(timer._buckets, buckets_before, strict=True)]
    assert moved == [b.get() for b in reference._buckets]
    assert abs(timer._sum.get() - sum_before - sum(LATENCIES_S)) < 1e-9


def test_counts_reach_prometheus_within_the_flush_interval_without_a_scrape() -> None:
    observer = _observer(299)
    labels = {"route": GIFT_TEMPLATE, "method": "POST", "status": "299"}
    before = _sample("giftwave_http_requests_total", labels)

    async def go() -> None:
        for _ in range(3):
            sent = await _request(observer)
            assert (b"x-request-id", sent[0]["headers"][-1][1]) == sent[0]["headers"][-1]
        await asyncio.sleep(request_observer.FLUSH_INTERVAL_S * 2)

    asyncio.run(go())
    assert _sample("giftwave_http_requests_total", labels) == before + 3


def test_what_waits_is_bounded_however_fast_requests_come() -> None:
    observer = _observer(298)
    labels = {"route": GIFT_TEMPLATE, "method": "POST", "status": "298"}
    before = _sample("giftwave_http_requests_total", labels)

    async def go() -> None:
        for _ in range(request_observer.FLUSH_EVERY):
            observer._observe({LANE_KEY: GIFT_TEMPLATE, "method": "POST"}, 298, 0.001)
        # No time has passed: the count of waiting requests alone made it flush.
        assert (
            _sample("giftwave_http_requests_total", labels) == before + request_observer.FLUSH_EVERY
        )
        assert observer._waiting == 0

    asyncio.run(go())

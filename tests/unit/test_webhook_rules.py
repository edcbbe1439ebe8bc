"""Webhook rules without a server: which URLs may be registered, which addresses a delivery
may reach, and the retry schedule."""

from __future__ import annotations

import ipaddress

import pytest

from giftwave.errors import Invalid
from giftwave.webhooks.destinations import DestinationRefused, check_url, ensure_public, is_public
from giftwave.webhooks.outbox import BACKOFF_FACTORS, JITTER, RetryPolicy


@pytest.mark.parametrize(
    "url",
    [
        "https://alerts.example.com/giftwave",
        "http://bot.example.org:8080/hook?token=abc",
        "https://93.184.215.14/hook",
        "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook",
    ],
)
def test_public_http_urls_are_accepted(url: str) -> None:
    assert check_url(url, allow_private=False) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.8/",
        "http://172.16.3.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # carrier-grade NAT: shared, not public
        "http://169.254.169.254/",  # cloud metadata
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://224.0.0.1/",
        "http://localhost/",
        "http://api.localhost/",
        "http://nas.local/",
        "http://db.internal/",
    ],
)
def test_private_destinations_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_url(url, allow_private=False)
    assert refused.value.code == "webhook_url_not_allowed"
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "example.com/hook",
        "ftp://example.com/",
        "file:///etc/passwd",
        "https:///path-only",
        "https://u:p@example.com/",
        "https://example.com/#frag",
        "https://example.com:0/",
        "https://example.com:70000/",
        "https://example.com/\x00",
        "https://example.com/" + "a" * 1100,
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_url(url, allow_private=True)
    assert refused.value.code == "invalid_webhook_url"


def test_mapped_and_plain_addresses_are_judged_alike() -> None:
    assert not is_public(ipaddress.ip_address("::ffff:10.0.0.1"))
    assert is_public(ipaddress.ip_address("::ffff:93.184.215.14"))


async def test_a_delivery_to_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(DestinationRefused, match="not public"):
        await ensure_public("http://localhost:8000/hook")  # /etc/hosts: no network needed
    with pytest.raises(DestinationRefused, match="not public"):
        await ensure_public("http://127.0.0.1:8000/hook")
    await ensure_public("https://93.184.215.14/hook")


def test_retries_back_off_with_jitter_and_repeat_the_last_step() -> None:
    policy = RetryPolicy(base_ms=10_000, max_attempts=12, disable_after_us=1)
    for attempt, factor in enumerate([*BACKOFF_FACTORS, BACKOFF_FACTORS[-1]], start=1):
        delays = [policy.delay_us(attempt) for _ in range(200)]
        nominal = 10_000_000 * factor
        assert min(delays) >= nominal * (1 - JITTER)
        assert max(delays) <= nominal * (1 + JITTER)
        assert len(set(delays)) > 100  # jittered, not one value
    total_s = sum(10 * f for f in BACKOFF_FACTORS)
    assert 20 * 3600 < total_s < 24 * 3600  # the default schedule spans about a day

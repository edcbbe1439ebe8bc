"""The one rule for the addresses this server may connect to for a user (giftwave.egress),
without a network: every special-purpose block refused, translators judged by what they
reach, the global unicast that is left allowed."""

from __future__ import annotations

import ipaddress

import pytest

from giftwave.egress import embedded_ipv4, first_not_public, is_public, parse_address

NOT_PUBLIC = [
    "0.0.0.0",
    "0.1.2.3",
    "10.1.2.3",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "169.254.169.254",
    "172.16.0.1",
    "192.0.0.8",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.251",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::127.0.0.1",  # IPv4-compatible
    "::8.8.8.8",  # IPv4-compatible, deprecated whatever it holds
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:0:a00:1",  # IPv4-translated
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::6440:1",  # NAT64 of 100.64.0.1
    "64:ff9b:1::808:808",  # local-use NAT64, whatever it embeds
    "100::1",
    "2001::1",  # Teredo
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:2::1",
    "2001:db8::1",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::",  # 6to4 of 192.168.1.1
    "3fff::1",
    "5f00::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
    "4000::1",  # outside global unicast
]
PUBLIC = [
    "8.8.8.8",
    "93.184.215.14",
    "1.1.1.1",
    "::ffff:93.184.215.14",
    "64:ff9b::5db8:d70e",  # NAT64 of 93.184.215.14
    "2002:5db8:d70e::1",  # 6to4 of 93.184.215.14
    "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
    "2a00:1450:4001:80b::200e",
]


@pytest.mark.parametrize("text", NOT_PUBLIC)
def test_special_purpose_and_translated_private_addresses_are_refused(text: str) -> None:
    assert not is_public(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", PUBLIC)
def test_global_unicast_is_allowed(text: str) -> None:
    assert is_public(ipaddress.ip_address(text))


def test_zones_and_literals() -> None:
    assert parse_address("fe80::1%eth0") == ipaddress.ip_address("fe80::1")
    assert parse_address("example.org") is None
    assert parse_address("2130706433") is None  # a name to the resolver, judged by its answer
    assert not is_public(ipaddress.IPv6Address("2a00:1450:4001:80b::200e%eth0"))


def test_embedded_addresses_and_the_first_refused() -> None:
    embedded = embedded_ipv4(ipaddress.IPv6Address("64:ff9b::a00:1"))
    assert embedded == ipaddress.IPv4Address("10.0.0.1")
    assert embedded_ipv4(ipaddress.IPv6Address("2606:2800:21f:cb07::1")) is None
    mixed = [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("64:ff9b::7f00:1")]
    assert first_not_public(mixed) == mixed[1]
    assert first_not_public(mixed[:1]) is None

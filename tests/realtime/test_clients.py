"""Who the client is: the proxy's header, trusted only on requests that came through it."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import jwt
import pytest
from django.http import HttpRequest
from django.test import RequestFactory
from django_grip import GripMiddleware

from devstack.pushpin import PUSHPIN_CONF, read_config
from realtime.clients import client_address

PUSHPIN = read_config(PUSHPIN_CONF)


def grip_sig(key: str = PUSHPIN.get("proxy", "sig_key")) -> str:
    claims = {"iss": PUSHPIN.get("proxy", "sig_iss"), "exp": int(time.time()) + 60}
    return jwt.encode(claims, key, algorithm="HS256")


def request(peer: str = "127.0.0.1", **headers: str) -> HttpRequest:
    """A request as it reaches the views: through django_grip's middleware."""
    made = RequestFactory().post("/rooms/lobby/messages/", REMOTE_ADDR=peer, headers=headers)
    GripMiddleware(lambda r: None).process_request(made)
    return made


def test_a_grip_signed_request_is_its_forwarded_address() -> None:
    assert client_address(request(grip_sig=grip_sig(), x_forwarded_for="203.0.113.7")) == (
        "203.0.113.7"
    )


def test_the_rightmost_forwarded_entry_counts() -> None:
    """The nearest proxy appends; entries to its left are whatever the client sent."""
    signed = request(grip_sig=grip_sig(), x_forwarded_for="10.0.0.1, 198.51.100.2 ,203.0.113.7")
    assert client_address(signed) == "203.0.113.7"


@pytest.mark.parametrize(
    "headers",
    [
        {"x_forwarded_for": "203.0.113.7"},
        {
            "x_forwarded_for": "203.0.113.7",
            "grip_sig": grip_sig(key="not-the-proxy-key-but-long-enough-for-hs256"),
        },
        {"x_forwarded_for": "203.0.113.7", "grip_sig": "not.a.jwt"},
    ],
    ids=["unsigned", "signed-with-another-key", "malformed-sig"],
)
def test_a_request_straight_to_the_app_is_its_peer_whatever_it_sends(
    headers: dict[str, str],
) -> None:
    assert client_address(request(peer="192.0.2.10", **headers)) == "192.0.2.10"


def test_a_forwarded_value_that_is_no_address_falls_back_to_the_peer() -> None:
    for value in ("", "unknown", "203.0.113.7:443", "evil, "):
        signed = request(peer="192.0.2.10", grip_sig=grip_sig(), x_forwarded_for=value)
        assert client_address(signed) == "192.0.2.10", value


def test_an_ipv6_client_counts_as_its_64() -> None:
    signed = request(grip_sig=grip_sig(), x_forwarded_for="2001:db8:1:2:aaaa::1")
    assert client_address(signed) == "2001:db8:1:2::/64"
    assert client_address(request(peer="::ffff:192.0.2.1")) == "192.0.2.1"


def test_fastly_client_ip_when_configured(settings: Any) -> None:
    settings.RATE_LIMIT_CLIENT_HEADER = "Fastly-Client-IP"
    signed = request(
        grip_sig=grip_sig(), fastly_client_ip="203.0.113.9", x_forwarded_for="10.0.0.1"
    )
    assert client_address(signed) == "203.0.113.9"


def test_a_trusted_proxy_needs_no_grip_sig(settings: Any) -> None:
    """Fastly's edge forwards POSTs to the origin without Fanout, so without a Grip-Sig."""
    settings.RATE_LIMIT_CLIENT_HEADER = "Fastly-Client-IP"
    settings.RATE_LIMIT_TRUSTED_PROXIES = [ipaddress.ip_network("10.1.0.0/16")]
    assert client_address(request(peer="10.1.2.3", fastly_client_ip="203.0.113.9")) == (
        "203.0.113.9"
    )
    assert client_address(request(peer="10.2.0.1", fastly_client_ip="203.0.113.9")) == "10.2.0.1"


def test_header_off_is_always_the_peer(settings: Any) -> None:
    settings.RATE_LIMIT_CLIENT_HEADER = ""
    signed = request(peer="192.0.2.10", grip_sig=grip_sig(), x_forwarded_for="203.0.113.7")
    assert client_address(signed) == "192.0.2.10"

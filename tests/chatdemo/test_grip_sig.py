"""Only a request whose Grip-Sig verifies is treated as coming through the GRIP proxy.

A request that verifies gets GRIP instructions (``Grip-Hold``) for the proxy
to act on; any other request, whatever Grip-Sig it claims, is a direct client
and gets the SSE stream itself. Both proxies are covered: Fastly Fanout
(ES256, with a locally generated key pair standing in for Fanout's) and
Pushpin (HS256 with its ``sig_key``). The real django_grip middleware and
PyJWT do the checking; nothing is mocked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client

from devstack.pushpin import PUSHPIN_CONF, read_config
from realtime.gripconf import grip_settings
from tests.conftest import Stack

pytestmark = pytest.mark.django_db

SERVICE_ID = "SU1Z0isxPaozGVKXdv0eY"
FASTLY_TOKEN = "fastly-api-token-used-only-for-publishing"
PUSHPIN = read_config(PUSHPIN_CONF)
SIG_KEY = PUSHPIN.get("proxy", "sig_key")
SIG_ISS = PUSHPIN.get("proxy", "sig_iss")


def _private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


FANOUT_KEY = _private_key()  # stands in for Fanout's signing key
FANOUT_PUBLIC_PEM = (
    FANOUT_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def _claims(iss: str, exp_in: int = 60) -> dict[str, Any]:
    return {"iss": iss, "exp": int(time.time()) + exp_in}


def _hs256_raw(claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 token signed with any bytes, even a PEM (PyJWT refuses to make those)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def _events(sig: str | None) -> Any:
    headers = {"HTTP_GRIP_SIG": sig} if sig is not None else {}
    response = Client().get("/rooms/lobby/events/", **headers)
    response.close()
    return response


def _assert_proxied(response: Any) -> None:
    assert response.status_code == 200
    assert response["Grip-Hold"] == "stream"
    assert response["Grip-Channel"].startswith("events-room-lobby")


def _assert_not_trusted(response: Any) -> None:
    """Not served as the proxy: no GRIP instructions, and (a proxy being configured) no stream."""
    assert response.status_code == 421
    assert response.json() == {
        "error": "this app streams only through its GRIP proxy: connect through the proxy",
        "field": "Grip-Sig",
    }
    assert not [name for name in response.headers if name.lower().startswith("grip-")]


# --- Fastly Fanout: ES256 ------------------------------------------------------------


@pytest.fixture
def fanout(settings: Any) -> None:
    grip = grip_settings(
        url=f"https://api.fastly.com/service/{SERVICE_ID}?verify-iss=fastly:{SERVICE_ID}&key={FASTLY_TOKEN}",
        verify_key="base64:" + base64.b64encode(FANOUT_PUBLIC_PEM.encode()).decode(),
    )
    settings.GRIP_PROXIES = grip.proxies


def test_fanout_valid_es256_sig_gets_grip_instructions(fanout: None) -> None:
    token = jwt.encode(_claims(f"fastly:{SERVICE_ID}"), FANOUT_KEY, algorithm="ES256")
    _assert_proxied(_events(token))


FANOUT_REJECTED = {
    "no header": lambda: None,
    "garbage": lambda: "not-a-jwt",
    "forged with another ES256 key": lambda: jwt.encode(
        _claims(f"fastly:{SERVICE_ID}"), _private_key(), algorithm="ES256"
    ),
    "expired": lambda: jwt.encode(
        _claims(f"fastly:{SERVICE_ID}", exp_in=-5), FANOUT_KEY, algorithm="ES256"
    ),
    "another service's issuer": lambda: jwt.encode(
        _claims("fastly:AnotherServiceId"), FANOUT_KEY, algorithm="ES256"
    ),
    "no exp": lambda: jwt.encode({"iss": f"fastly:{SERVICE_ID}"}, FANOUT_KEY, algorithm="ES256"),
    "HS256 with the API token": lambda: jwt.encode(
        _claims(f"fastly:{SERVICE_ID}"), FASTLY_TOKEN, algorithm="HS256"
    ),
    "HS256 with the public key as secret": lambda: _hs256_raw(
        _claims(f"fastly:{SERVICE_ID}"), FANOUT_PUBLIC_PEM.encode()
    ),
    "alg none": lambda: jwt.encode(_claims(f"fastly:{SERVICE_ID}"), None, algorithm="none"),
}


@pytest.mark.parametrize("case", FANOUT_REJECTED)
def test_fanout_invalid_sig_is_served_as_direct_client(fanout: None, case: str) -> None:
    _assert_not_trusted(_events(FANOUT_REJECTED[case]()))


# --- Pushpin: HS256 with sig_key ---------------------------------------------------


@pytest.fixture
def pushpin(settings: Any) -> None:
    settings.GRIP_PROXIES = grip_settings(
        url=f"http://127.0.0.1:5561/?iss={SIG_ISS}&key={SIG_KEY}", verify_iss=SIG_ISS
    ).proxies


def test_pushpin_valid_hs256_sig_gets_grip_instructions(pushpin: None) -> None:
    _assert_proxied(_events(jwt.encode(_claims(SIG_ISS), SIG_KEY, algorithm="HS256")))


PUSHPIN_REJECTED = {
    "no header": lambda: None,
    "garbage": lambda: "x.y.z",
    "forged with another secret": lambda: jwt.encode(
        _claims(SIG_ISS), "guessed-secret-of-32-bytes-or-more!", algorithm="HS256"
    ),
    "expired": lambda: jwt.encode(_claims(SIG_ISS, exp_in=-5), SIG_KEY, algorithm="HS256"),
    "wrong issuer": lambda: jwt.encode(_claims("someone-else"), SIG_KEY, algorithm="HS256"),
    "ES256 with an unknown key": lambda: jwt.encode(
        _claims(SIG_ISS), _private_key(), algorithm="ES256"
    ),
}


@pytest.mark.parametrize("case", PUSHPIN_REJECTED)
def test_pushpin_invalid_sig_is_served_as_direct_client(pushpin: None, case: str) -> None:
    _assert_not_trusted(_events(PUSHPIN_REJECTED[case]()))


# --- the live app --------------------------------------------------------------------


@pytest.mark.integration
def test_forged_sig_to_live_app_is_not_trusted(live_db: Stack, room: str) -> None:
    """Straight to the app, around Pushpin: a forged Grip-Sig gets no GRIP instructions."""
    forged = jwt.encode(_claims(SIG_ISS), "not-the-sig-key-but-long-enough!!", algorithm="HS256")
    response = httpx.get(
        f"{live_db.app.url}/rooms/{room}/events/",
        headers={"Grip-Sig": forged, "Accept": "text/event-stream"},
        timeout=10,
    )
    assert response.status_code == 421
    assert not [h for h in response.headers if h.startswith("grip-")]

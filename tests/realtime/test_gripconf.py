"""GRIP_URL, GRIP_VERIFY_KEY and GRIP_VERIFY_ISS: what is accepted and what stops start-up."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ImproperlyConfigured
from gripcontrol import parse_grip_uri

from realtime.gripconf import decode_verify_key, grip_settings

KEY = ec.generate_private_key(ec.SECP256R1()).public_key()
PEM = KEY.public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
).decode()
DER = KEY.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
FASTLY = "https://api.fastly.com/service/SVC?verify-iss=fastly:SVC&key=TOKEN"


@pytest.mark.parametrize(
    "value",
    [
        PEM,
        PEM.replace("\n", "\\n"),  # one line, as env files carry it
        "base64:" + base64.b64encode(PEM.encode()).decode(),
        "base64:" + base64.b64encode(DER).decode(),
    ],
    ids=["pem", "pem-escaped-newlines", "base64-pem", "base64-der"],
)
def test_decode_verify_key_accepts_pem_and_base64(value: str) -> None:
    assert decode_verify_key(value) == PEM


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("base64:***", "is not valid base64"),
        ("base64:" + base64.b64encode(b"hello").decode(), "is not a public key"),
        ("changeme", "is not a public key"),
    ],
)
def test_decode_verify_key_rejects_non_keys_naming_the_variable(value: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"GRIP_VERIFY_KEY .*{message}"):
        decode_verify_key(value)


def test_grip_settings_empty_url_means_no_proxy() -> None:
    assert grip_settings(url="", verify_key=PEM).proxies == []
    assert grip_settings(url="  ").proxies == []


def test_grip_settings_keyless_url_is_refused() -> None:
    """Without a key django_grip would trust any request carrying a Grip-Sig header."""
    with pytest.raises(
        ImproperlyConfigured, match="GRIP_URL's entry for http://pushpin:5561 has no key"
    ):
        grip_settings(url="http://pushpin:5561/")
    with pytest.raises(
        ImproperlyConfigured, match="GRIP_URL's entry for http://pushpin:5561 has no key"
    ):
        grip_settings(url="http://pushpin:5561/?iss=pushpin", verify_key=PEM)


def test_grip_settings_fastly_without_verify_key_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="GRIP_VERIFY_KEY is not set"):
        grip_settings(url=FASTLY)


def test_grip_settings_fastly_without_issuer_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="verify-iss=fastly:<service id>"):
        grip_settings(url="https://api.fastly.com/service/SVC?key=TOKEN", verify_key=PEM)


def test_grip_settings_fastly_form_parses_as_django_grip_reads_it() -> None:
    [entry] = grip_settings(url=FASTLY, verify_key=PEM).proxies
    assert entry == {
        **parse_grip_uri(FASTLY),
        "verify_key": PEM,
    }
    assert parse_grip_uri(FASTLY) == {
        "control_uri": "https://api.fastly.com/service/SVC",
        "key": "TOKEN",  # no iss: sent as a Bearer token
        "verify_iss": "fastly:SVC",
    }


def test_grip_settings_verify_iss_from_env_is_added_to_the_url() -> None:
    [entry] = grip_settings(
        url="https://api.fastly.com/service/SVC?key=TOKEN", verify_key=PEM, verify_iss="fastly:SVC"
    ).proxies
    assert entry["verify_iss"] == "fastly:SVC"


def test_grip_settings_url_issuer_wins_over_env() -> None:
    [entry] = grip_settings(url=FASTLY, verify_key=PEM, verify_iss="fastly:OTHER").proxies
    assert entry["verify_iss"] == "fastly:SVC"


def test_grip_settings_several_proxies_each_checked_and_keyed() -> None:
    urls = [f"http://127.0.0.1:{port}/?iss=pushpin&key=k{port}" for port in (5561, 5571)]
    proxies = grip_settings(url=f" {urls[0]}, {urls[1]}\n").proxies
    assert [(p["control_uri"], p["key"]) for p in proxies] == [
        ("http://127.0.0.1:5561", "k5561"),
        ("http://127.0.0.1:5571", "k5571"),
    ]
    with pytest.raises(
        ImproperlyConfigured, match=re.escape("entry for http://127.0.0.1:5571 has no key")
    ):
        grip_settings(url=f"{urls[0]} http://127.0.0.1:5571/?iss=pushpin")

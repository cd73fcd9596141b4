"""Read the GRIP proxy's configuration from the environment, refusing unsafe ones.

django_grip decides that a request came through the proxy when its
``Grip-Sig`` header verifies against the key of a configured proxy. Two of
its behaviours make a careless configuration unsafe or broken, so settings
go through :func:`grip_settings` instead of handing the raw values over:

- A proxy entry with no key at all makes django_grip trust *any* request
  that carries a ``Grip-Sig`` header, valid or not. So ``GRIP_URL`` must
  carry ``key``.
- django_grip decodes a ``base64:`` prefix inside ``GRIP_URL`` but not in the
  ``GRIP_VERIFY_KEY`` setting. So the verify key is decoded here.

Fastly Fanout signs ``Grip-Sig`` with ES256, with one key pair for every
Fastly service. The ``key`` in a Fastly ``GRIP_URL`` is an API token (sent as
a Bearer token when publishing) and cannot verify anything, so a Fastly
``GRIP_URL`` needs ``GRIP_VERIFY_KEY`` (Fanout's public key) and an issuer to
check (``verify-iss=fastly:<service id>``), or a token that Fanout signed for
somebody else's service would pass.

This module does not import Django settings; it only raises
``ImproperlyConfigured`` with a message that names the variable to fix.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

from realtime.grip import parse_grip_uri

FASTLY_API_HOST = "api.fastly.com"


@dataclass(frozen=True)
class GripSettings:
    url: str  # GRIP_URL for django_grip; "" means no proxy (the app streams SSE itself)
    verify_key: str | None  # GRIP_VERIFY_KEY for django_grip: a PEM public key, or None


def decode_verify_key(value: str) -> str:
    """A public key given as PEM text (``\\n`` escapes allowed) or ``base64:<PEM or DER>``.

    Returns PEM text. Raises ImproperlyConfigured naming ``GRIP_VERIFY_KEY``
    when the value is not a public key that PyJWT can verify ES256 or RS256
    signatures with.
    """
    from cryptography.hazmat.primitives import serialization

    raw: bytes
    if value.startswith("base64:"):
        try:
            raw = base64.b64decode(value.removeprefix("base64:").strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(
                "GRIP_VERIFY_KEY starts with 'base64:' but the rest is not valid base64"
            ) from None
    else:
        # Environment files and container platforms often carry a PEM on one line.
        raw = value.replace("\\n", "\n").strip().encode()
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(raw)
        else:
            key = serialization.load_der_public_key(raw)
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "GRIP_VERIFY_KEY is not a public key: give the proxy's public key "
            "(for Fastly Fanout, its ES256 key) as PEM text or as 'base64:' + base64 of it"
        ) from None
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _with_query_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    query[name] = [value]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))


def grip_settings(*, url: str, verify_key: str = "", verify_iss: str = "") -> GripSettings:
    """Validate GRIP_URL, GRIP_VERIFY_KEY and GRIP_VERIFY_ISS; return what django_grip reads.

    - ``url`` empty: no proxy; the verify settings are ignored.
    - ``url`` must carry ``key`` (the publish credential; for Pushpin also its
      HS256 ``sig_key``), otherwise any ``Grip-Sig`` would be trusted.
    - ``verify_iss``, if given, is added to the URL as ``verify-iss`` unless
      the URL has one; django_grip checks the token's ``iss`` against it.
    - A Fastly URL (``api.fastly.com``) needs a verify key and a verify issuer.
    """
    url = url.strip()
    if not url:
        return GripSettings(url="", verify_key=None)
    entry = parse_grip_uri(url)
    if not entry["control_uri"].startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            f"GRIP_URL must be an http(s) URL of the proxy's publish API; got {entry['control_uri']!r}"
        )
    if "key" not in entry:
        raise ImproperlyConfigured(
            "GRIP_URL has no key=...: without a key django_grip would trust any request "
            "that sends a Grip-Sig header. Pushpin: key=<its sig_key>&iss=<its sig_iss>; "
            "Fastly: key=<API token> plus GRIP_VERIFY_KEY."
        )
    if verify_iss.strip() and "verify_iss" not in entry:
        url = _with_query_param(url, "verify-iss", verify_iss.strip())
        entry = parse_grip_uri(url)
    decoded = decode_verify_key(verify_key.strip()) if verify_key.strip() else None
    if urlsplit(entry["control_uri"]).hostname == FASTLY_API_HOST:
        if decoded is None and "verify_key" not in entry:
            raise ImproperlyConfigured(
                "GRIP_URL points at Fastly but GRIP_VERIFY_KEY is not set: Fanout signs "
                "Grip-Sig with ES256, and the key in GRIP_URL is an API token that cannot "
                "verify it. Set GRIP_VERIFY_KEY to Fanout's public key."
            )
        if "verify_iss" not in entry:
            raise ImproperlyConfigured(
                "GRIP_URL points at Fastly but has no verify-iss: Fanout signs for every "
                "Fastly service with the same key, so add verify-iss=fastly:<service id> "
                "to GRIP_URL (or set GRIP_VERIFY_ISS)."
            )
    return GripSettings(url=url, verify_key=decoded)

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
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from realtime.grip import parse_grip_uri

FASTLY_API_HOST = "api.fastly.com"


Proxy = dict[str, Any]  # one GRIP_PROXIES entry, as parse_grip_uri gives it


@dataclass(frozen=True)
class GripSettings:
    # GRIP_PROXIES for django_grip and the publisher: one entry per proxy (each with its
    # verify key); none means no proxy (the app streams SSE itself).
    proxies: list[Proxy]


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


def grip_settings(*, url: str, verify_key: str = "", verify_iss: str = "") -> GripSettings:
    """Validate GRIP_URL, GRIP_VERIFY_KEY and GRIP_VERIFY_ISS; return what django_grip reads.

    - ``url`` empty: no proxy; the verify settings are ignored.
    - ``url`` may list several proxies (Pushpin instances), separated by commas
      or spaces; the publisher publishes every event to each. Each entry is
      checked on its own, as below.
    - Each entry must carry ``key`` (the publish credential; for Pushpin also
      its HS256 ``sig_key``), otherwise any ``Grip-Sig`` would be trusted.
    - ``verify_iss``, if given, is added to each entry as ``verify-iss`` unless
      it has one; django_grip checks the token's ``iss`` against it.
    - A Fastly entry (``api.fastly.com``) needs a verify key and a verify issuer.
    """
    entries = [e for e in re.split(r"[\s,]+", url.strip()) if e]
    decoded = decode_verify_key(verify_key.strip()) if verify_key.strip() else None
    return GripSettings(proxies=[_proxy(e, decoded, verify_iss.strip()) for e in entries])


def _proxy(url: str, verify_key: str | None, verify_iss: str) -> Proxy:
    entry: Proxy = parse_grip_uri(url)
    if not entry["control_uri"].startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            f"GRIP_URL must be an http(s) URL of the proxy's publish API; got {entry['control_uri']!r}"
        )
    if "key" not in entry:
        raise ImproperlyConfigured(
            f"GRIP_URL's entry for {entry['control_uri']} has no key=...: without a key "
            "django_grip would trust any request that sends a Grip-Sig header. "
            "Pushpin: key=<its sig_key>&iss=<its sig_iss>; Fastly: key=<API token> plus "
            "GRIP_VERIFY_KEY."
        )
    if verify_iss and "verify_iss" not in entry:
        entry["verify_iss"] = verify_iss
    if verify_key is not None and "verify_key" not in entry:
        entry["verify_key"] = verify_key
    if urlsplit(entry["control_uri"]).hostname == FASTLY_API_HOST:
        if "verify_key" not in entry:
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
    return entry

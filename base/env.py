"""Reading settings from the environment: one parser per kind of value, each naming the
variable it refuses."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")


def env_bool(name: str, default: bool = False, environ: Mapping[str, str] = os.environ) -> bool:
    value = environ.get(name)
    if value is None or value.strip() == "":
        return default
    normalized = value.strip().lower()
    if normalized in {"1", "true", "yes", "on"}:
        return True
    if normalized in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {value!r}"
    )


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer; got {value!r}") from None


def env_networks(
    name: str, environ: Mapping[str, str] = os.environ
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma- or space-separated addresses and networks (``10.0.0.0/8``, ``2001:db8::1``)."""
    networks = []
    for item in environ.get(name, "").replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must list IP addresses or networks such as 10.0.0.0/8; got {item!r}"
            ) from None
    return networks


def env_header(name: str, default: str, environ: Mapping[str, str] = os.environ) -> str:
    """An HTTP header's name, or ``off`` (returned as ``""``)."""
    value = environ.get(name, "").strip() or default
    if value.lower() == "off":
        return ""
    if not _HEADER_NAME.match(value):
        raise ImproperlyConfigured(
            f"{name} must be an HTTP header's name, such as X-Forwarded-For, or off; got {value!r}"
        )
    return value

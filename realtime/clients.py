"""Who the client is, as far as the app can trust it: the address a rate limit counts.

Behind the proxy every request comes from the proxy's address, so the client's
own address is taken from the header the proxy sets (``RATE_LIMIT_CLIENT_HEADER``:
``X-Forwarded-For`` for Pushpin, which pushpin.conf makes replace whatever the
client sent with the address it connected from; ``Fastly-Client-IP`` behind
Fastly) — but only from a request that came through that proxy: one whose
``Grip-Sig`` verified, or whose peer is in ``RATE_LIMIT_TRUSTED_PROXIES`` (for a
proxy that forwards requests without signing them, such as Fastly's edge for
POSTs). Any other request is its peer address, whatever headers it sends, so a
client that reaches the app directly cannot pick its bucket.

Of a list (``X-Forwarded-For: a, b``) the rightmost entry counts: the one the
nearest proxy added. An IPv6 client counts as its /64, which one subscriber
usually holds whole.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

from realtime.grip import proxied


def client_address(request: HttpRequest) -> str:
    """The client's address (an IPv6 one as its /64 network), from the trusted header when
    the request came through a trusted proxy, else from the connection."""
    peer = request.META.get("REMOTE_ADDR", "")
    header = settings.RATE_LIMIT_CLIENT_HEADER
    if header and (proxied(request) or _trusted_peer(peer)):
        forwarded = _address(request.headers.get(header, "").rsplit(",", 1)[-1])
        if forwarded is not None:
            return forwarded
    return _address(peer) or peer


def _trusted_peer(peer: str) -> bool:
    networks = settings.RATE_LIMIT_TRUSTED_PROXIES
    if not networks:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in networks)


def _address(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)

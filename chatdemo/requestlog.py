"""One structured log line per request, in the key=value family of the publish lines.

    time=... level=INFO logger=chatdemo.request method=GET path=/rooms/lobby/events/ status=200 ms=3.1 proxied=true

``proxied`` says whether the request carried a ``Grip-Sig`` that verified,
that is whether the GRIP proxy holds the stream. For a direct SSE stream the
line is written when the response starts, not when the stream ends. The query
string is left out: recovery links carry signed tokens in it.
"""

from __future__ import annotations

import logging
import time

from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

logger = logging.getLogger("chatdemo.request")


class RequestLogMiddleware(MiddlewareMixin):
    """Sync- and async-capable (MiddlewareMixin), so it never forces the ASGI stack into threads."""

    def process_request(self, request: HttpRequest) -> None:
        request._log_started = time.monotonic()  # type: ignore[attr-defined]

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        started = getattr(request, "_log_started", None)
        elapsed_ms = (time.monotonic() - started) * 1000 if started is not None else 0.0
        grip = getattr(request, "grip", None)
        logger.info(
            "request method=%s path=%s status=%d ms=%.1f proxied=%s",
            request.method,
            _quote(request.path),
            response.status_code,
            elapsed_ms,
            "true" if grip is not None and grip.proxied else "false",
        )
        return response


def _quote(value: str) -> str:
    """Keep one line per request even for paths with spaces or control characters."""
    if value and all(33 <= ord(c) < 127 and c != '"' for c in value):
        return value
    return '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'

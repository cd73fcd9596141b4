"""Every error answered well: JSON on the API's paths, 503 for a fault, never a 500 page.

:class:`ErrorMiddleware` sits near the top of ``MIDDLEWARE``:

- On an API path (``/rooms/``, ``/boards/``, ``/healthz``) every error
  response leaves as the API's ``{"error": ..., "field": ...}`` JSON, whoever
  made it: Django's 404 for a path that matches no route (its debug page
  included), a CSRF 403, a 400 for a disallowed host.
- A fault of the database (unreachable, shutting down, out of connections, the
  pool's wait timed out) is a 503 with ``Retry-After`` on every path: clients
  and our pages retry it. Any other exception is logged and answered with a
  JSON 500 on the API; pages keep Django's handling.
- A form body that declares a charset other than UTF-8 is refused with a 415
  before anything parses it: Django refuses it only when ``request.POST`` is
  first read, and under ``DEBUG`` its error page reads it again and never ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.loader import render_to_string

from base.http import json_error

logger = logging.getLogger("chatdemo.errors")

API_PREFIXES = ("/rooms/", "/boards/", "/healthz")
# Seconds a client should wait before it retries after a 503.
RETRY_AFTER_SECONDS = 2
# The field an error names when whoever made it did not say.
_FIELD_OF_STATUS = {
    400: "request",
    401: "request",
    403: "request",
    404: "path",
    405: "method",
    413: "body",
    415: "Content-Type",
}
_FORM = "application/x-www-form-urlencoded"


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def is_json(response: HttpResponseBase) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip() == "application/json"


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: JSON on the API, a short page elsewhere."""
    message = "the database is unavailable; retry shortly"
    if is_api_path(request.path_info):
        response: HttpResponse = json_error(503, "database", message)
    else:
        response = HttpResponse(
            render_to_string("503.html", {"message": message}, request=request), status=503
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class ErrorMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        api = is_api_path(request.path_info)
        refused = _refuse_charset(request, api)
        if refused is not None:
            return refused
        response = self.get_response(request)
        if api and response.status_code >= 400 and not is_json(response):
            response = _as_json(response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError | InterfaceError):
            logger.warning(
                "database unavailable path=%s error=%s",
                request.path_info,
                str(exception).splitlines()[0] if str(exception) else type(exception).__name__,
            )
            return database_unavailable(request)
        if not is_api_path(request.path_info):
            return None
        if isinstance(exception, BadRequest | SuspiciousOperation):
            return json_error(400, "request", str(exception) or "bad request")
        logger.error("unhandled error path=%s", request.path_info, exc_info=exception)
        return json_error(500, "request", "internal error")


def _refuse_charset(request: HttpRequest, api: bool) -> HttpResponse | None:
    if request.method != "POST" or request.content_type != _FORM or request.encoding is None:
        return None
    if request.encoding.lower() == "utf-8":  # exactly what Django's parser accepts
        return None
    message = f"{_FORM} must be UTF-8 encoded"
    if api:
        return json_error(415, "Content-Type", message)
    return HttpResponse(message, status=415, content_type="text/plain; charset=utf-8")


def _as_json(response: HttpResponseBase) -> HttpResponse:
    status = response.status_code
    try:
        phrase = HTTPStatus(status).phrase.lower()
    except ValueError:
        phrase = "error"
    converted = json_error(status, _FIELD_OF_STATUS.get(status, "request"), phrase)
    for header in ("Allow", "Retry-After", "Vary"):
        if header in response:
            converted[header] = response[header]
    return converted

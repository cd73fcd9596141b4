"""The API's HTTP vocabulary, shared by every app: JSON errors, the translation of domain
errors, method and path helpers, and body parsing."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import URLPattern, path

from base.errors import (
    DomainError,
    InvalidField,
    NotFound,
    RateLimited,
    RetryLater,
    TooLarge,
    Unavailable,
    UnsupportedType,
)

FORM_CONTENT_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}

# The one place a kind of domain error becomes an HTTP status.
STATUS_OF_ERROR: dict[type[DomainError], int] = {
    InvalidField: 400,
    NotFound: 404,
    TooLarge: 413,
    UnsupportedType: 415,
    RateLimited: 429,
    Unavailable: 503,
}

View = Callable[..., HttpResponse]


def json_error(status: int, field: str | None, message: str, **extra: Any) -> JsonResponse:
    """The one error shape of the API: ``{"error": message, "field": name}``."""
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return JsonResponse(body, status=status)


def error_response(error: DomainError) -> JsonResponse:
    """A domain error as the API answers it (:data:`STATUS_OF_ERROR`; 400 for any other kind).

    A :class:`~base.errors.RetryLater` (rate limited, unavailable) also says when to try
    again, in ``Retry-After`` and as ``retry_after`` in the body (whole seconds, at least 1).
    """
    status = next((code for kind, code in STATUS_OF_ERROR.items() if isinstance(error, kind)), 400)
    if isinstance(error, RetryLater):
        response = json_error(status, error.field, error.message, retry_after=error.retry_after)
        response["Retry-After"] = str(error.retry_after)
        return response
    return json_error(status, error.field, error.message)


def api_view(*methods: str) -> Callable[[View], View]:
    """An API endpoint: other methods get a JSON 405 that lists the allowed ones, and a
    :class:`~base.errors.DomainError` raised anywhere below is answered as
    :func:`error_response` says."""
    allowed = sorted({m.upper() for m in methods} | ({"HEAD"} if "GET" in methods else set()))

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                response = json_error(
                    405, "method", f"method {request.method} not allowed", allowed=allowed
                )
                response["Allow"] = ", ".join(allowed)
                return response
            try:
                return view(request, *args, **kwargs)
            except DomainError as error:
                return error_response(error)

        return wrapper

    return decorator


def api_path(route: str, view: View, *, name: str) -> list[URLPattern]:
    """``route`` and the same route without its trailing slash, both to ``view``.

    The original demos' clients call some paths without the slash. Django's
    APPEND_SLASH redirects a GET but cannot redirect a POST (it raises under
    DEBUG, and a redirected POST arrives as a GET), so an API path answers
    both forms itself. ``reverse(name)`` gives the form with the slash.
    """
    if not route.endswith("/"):
        raise ValueError(f"an API route ends with '/': {route!r}")
    return [path(route, view, name=name), path(route.removesuffix("/"), view)]


def read_body(request: HttpRequest) -> bytes:
    """The request's body, at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes of it, whatever its type."""
    try:
        return request.body
    except RequestDataTooBig:
        raise TooLarge("body", "is too large") from None


def posted_fields(request: HttpRequest) -> dict[str, Any]:
    """The text fields of a POST body: form-encoded (as the original demo) or a JSON object.

    The whole body is read first, so that ``DATA_UPLOAD_MAX_MEMORY_SIZE``
    bounds every content type, file parts included (Django's limit leaves
    files out). File parts are not fields: a field sent as a file is missing.
    Raises a :class:`~base.errors.DomainError` naming ``body`` or ``Content-Type``.
    """
    body = read_body(request)
    try:
        if request.content_type == "application/json":
            try:
                data = json.loads(body)
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise InvalidField("body", "is not valid JSON") from None
            if not isinstance(data, dict):
                raise InvalidField("body", "must be a JSON object")
            return data
        if request.content_type in FORM_CONTENT_TYPES or not body:
            return {key: request.POST.get(key) for key in request.POST}
    except MultiPartParserError:
        raise InvalidField("body", "is not valid multipart/form-data") from None
    except (BadRequest, SuspiciousOperation) as error:
        # Too many fields or files (a form that is not UTF-8 never gets here:
        # chatdemo.errors refuses it before anything parses it).
        raise InvalidField("body", str(error) or "cannot be parsed") from None
    raise UnsupportedType(
        "Content-Type",
        "must be application/x-www-form-urlencoded, multipart/form-data or application/json",
    )

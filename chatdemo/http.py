"""JSON responses and URL patterns shared by the API views of both apps."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path


class FieldError(ValueError):
    """Bad input in one named field; views turn it into a 400 that names the field."""

    def __init__(self, field: str, message: str, *, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


def json_error(status: int, field: str | None, message: str, **extra: Any) -> JsonResponse:
    """The one error shape of the API: ``{"error": message, "field": name}``."""
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return JsonResponse(body, status=status)


def field_error_response(error: FieldError) -> JsonResponse:
    return json_error(error.status, error.field, error.message)


def allow_methods(
    *methods: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Answer other methods with a JSON 405 that lists the allowed ones."""
    allowed = sorted({m.upper() for m in methods} | ({"HEAD"} if "GET" in methods else set()))

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                response = json_error(
                    405, None, f"method {request.method} not allowed", allowed=allowed
                )
                response["Allow"] = ", ".join(allowed)
                return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def api_path(route: str, view: Callable[..., HttpResponse], *, name: str) -> list[URLPattern]:
    """``route`` and the same route without its trailing slash, both to ``view``.

    The original demos' clients call some paths without the slash. Django's
    APPEND_SLASH redirects a GET but cannot redirect a POST (it raises under
    DEBUG, and a redirected POST arrives as a GET), so an API path answers
    both forms itself. ``reverse(name)`` gives the form with the slash.
    """
    if not route.endswith("/"):
        raise ValueError(f"an API route ends with '/': {route!r}")
    return [path(route, view, name=name), path(route.removesuffix("/"), view)]

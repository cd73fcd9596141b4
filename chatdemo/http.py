"""JSON responses shared by the API views of both apps."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse


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

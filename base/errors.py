"""Domain errors: what a service or a parser says is wrong, with no HTTP in it.

Each names the field it is about. Views never build responses from them by
hand: :func:`base.http.api_view` translates them, in one place, into the API's
``{"error", "field"}`` JSON with the status that fits the kind of error.
"""

from __future__ import annotations


class DomainError(ValueError):
    """Something wrong with one named field (or header, or the body)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidField(DomainError):
    """A value that breaks the field's rule."""


class NotFound(DomainError):
    """An id or name that names nothing: ``field`` says which one."""

    def __init__(self, field: str, message: str | None = None) -> None:
        super().__init__(field, message or f"no such {field}")


class TooLarge(DomainError):
    """A value over its size limit (the request body)."""


class UnsupportedType(DomainError):
    """A value of a type that is not accepted at all (the body's ``Content-Type``)."""


class RetryLater(DomainError):
    """A request refused for now: it may succeed if tried again in ``retry_after`` seconds."""

    def __init__(self, field: str, message: str, *, retry_after: int) -> None:
        super().__init__(field, message)
        self.retry_after = retry_after


class RateLimited(RetryLater):
    """Too many requests from one client (429)."""


class Unavailable(RetryLater):
    """A write the system cannot take now, whoever sends it (503): its events wait to be
    delivered (realtime.log)."""

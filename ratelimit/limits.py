"""The entry point: :func:`rate_limited`, a view decorator for writes."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from base.errors import RateLimited
from base.http import View
from ratelimit.buckets import take

ClientOf = Callable[[HttpRequest], str]


def rate_limited(scope: str, *, client: ClientOf) -> Callable[[View], View]:
    """Charge each POST to the view to ``client(request)``'s bucket of the limit ``scope``
    (``settings.RATE_LIMITS[scope]``: a :class:`~ratelimit.rates.Rate`, or ``None``
    for off). Over the limit, raise :class:`~base.errors.RateLimited` (``api_view``
    answers 429 with ``Retry-After``) and the view does not run. Other methods pass.

    Costs one database write per POST. Goes inside :func:`idempotency.keys.idempotent`,
    so that a retry answered from its key's stored answer is not charged again (and a
    keyed write that fails rolls back its charge with it, as it does its key).
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            rate = settings.RATE_LIMITS[scope]
            if request.method == "POST" and rate is not None:
                wait = take(scope=scope, client=client(request), rate=rate)
                if wait > 0:
                    seconds = max(1, math.ceil(wait))
                    raise RateLimited(
                        "rate", f"too many {scope}; try again in {seconds} s", retry_after=seconds
                    )
            return view(request, *args, **kwargs)

        return wrapper

    return decorator

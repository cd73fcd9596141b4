"""Run the whole middleware chain in one thread under ASGI.

Django adapts each middleware to the mode of the handler it wraps. The view
handler of the ASGI path is async, so the middleware between WhiteNoise (sync
only) and the view ran in async mode, and each of their sync hooks
(``process_request``, ``process_response``) hopped to a thread and back: about
ten thread hand-offs per request. Placed last in ``MIDDLEWARE``, this sync-only
middleware makes everything above it sync: Django enters a thread once for the
chain and once for the view. The benchmark measured 9 -> 6.5 ms of app CPU per
chat POST under daphne, and 83 -> 118 posts/s (docs/BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase


class SyncChainMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

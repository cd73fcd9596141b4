"""Who may show our pages in a frame: ``DJANGO_FRAME_ANCESTORS``, as CSP ``frame-ancestors``.

By default no one may (``frame-ancestors 'none'`` and ``X-Frame-Options:
DENY``), which stops clickjacking. The original chat demo was embedded in an
iframe on purpose; a site that wants that lists the embedding origins, and
then only they may frame the pages. X-Frame-Options cannot name an origin, so
it is left out then: browsers that know CSP follow ``frame-ancestors``.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

# CSP source expressions that make sense for frame-ancestors: 'self', a
# scheme ("https:"), or a host source with optional scheme, port and path.
_SOURCE = re.compile(
    r"^(?:'self'|[a-z][a-z0-9+.-]*:|(?:[a-z][a-z0-9+.-]*://)?(?:\*\.)?[A-Za-z0-9.-]+(?::(?:\d+|\*))?(?:/[^\s;,']*)?|\*)$"
)


def frame_ancestors_policy(sources: list[str]) -> str:
    """The ``Content-Security-Policy`` value for these sources (none: ``'none'``).

    Raises ImproperlyConfigured, naming DJANGO_FRAME_ANCESTORS, for a value
    that is not a source expression (a ``;`` would smuggle in other directives).
    """
    for source in sources:
        if not _SOURCE.match(source):
            raise ImproperlyConfigured(
                f"DJANGO_FRAME_ANCESTORS: {source!r} is not a CSP source such as "
                "https://example.com, *.example.com, https: or 'self'"
            )
    return "frame-ancestors " + (" ".join(sources) if sources else "'none'")


class FrameAncestorsMiddleware(MiddlewareMixin):
    """Sets ``frame-ancestors`` on every response; lets framing through when configured.

    Placed after Django's XFrameOptionsMiddleware, so that it sees each
    response first and can exempt it from ``X-Frame-Options: DENY``.
    """

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response.headers.setdefault("Content-Security-Policy", settings.FRAME_ANCESTORS_POLICY)
        if settings.FRAME_ANCESTORS:
            response.xframe_options_exempt = True  # type: ignore[attr-defined]
        return response

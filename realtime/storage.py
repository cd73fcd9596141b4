"""django-eventstream's storage class, reading our event log (``EVENTSTREAM_STORAGE_CLASS``).

django-eventstream answers a client's resume (``Last-Event-ID``) and the
proxy's recovery requests (``Grip-Last``) from the storage class. Behind a
GRIP proxy, every such answer must hold the stream, so that it depends on
``Grip-Last`` or ``Last-Event-ID`` alone: when more events wait than one page
holds, django-eventstream would otherwise answer with a page that does not
hold, whose next link carries the cursor in its query. Pushpin shares
in-flight recovery requests by path and ``Grip-Last``, ignoring the query, so
such a page could reach another subscriber a second time, or not at all
(docs/BENCHMARKS.md). Inside :func:`proxy_page`, a read returns fewer events
than django-eventstream asked for, so it never sees "more" and always holds;
the page says whether events are left, so that the stream can ask the proxy
to come back for them soon.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings

from realtime import log
from realtime.eventstream import EventDoesNotExist, StorageBase, StreamEvent
from realtime.models import Event


@dataclass
class Page:
    """What the reads of one proxied request returned."""

    size: int
    more: bool = False  # events were left after the last one returned


_proxy_page: ContextVar[Page | None] = ContextVar("realtime_proxy_page", default=None)


@contextmanager
def proxy_page() -> Iterator[Page]:
    """Make the reads in this block return pages that the proxy holds (see the module)."""
    page = Page(size=settings.REALTIME_PAGE_SIZE)
    token = _proxy_page.set(page)
    try:
        yield page
    finally:
        _proxy_page.reset(token)


class EventLogStorage(StorageBase):
    """The event log (:mod:`realtime.models`) as django-eventstream's storage, read-only.

    Events are written by :mod:`realtime.log`, never through django-eventstream's
    ``send_event`` (so ``append_event`` is not implemented).
    """

    def get_events(self, channel: str, last_id: int, limit: int = 100) -> list[StreamEvent]:
        """The events after ``last_id``, oldest first, at most ``limit``.

        Raises ``EventDoesNotExist`` (with the current id) when the log cannot
        resume after ``last_id``: an id it never issued, or events since trimmed.
        """
        current = self.get_current_id(channel)
        if last_id == current:
            return []
        page = _proxy_page.get()
        count = limit if page is None else max(1, min(limit - 1, page.size))
        rows = list(
            Event.objects.filter(channel__name=channel, seq__gt=last_id)
            .order_by("seq")
            .values_list("seq", "type", "data")[: count + 1]
        )
        if last_id > current or not rows or rows[0][0] != last_id + 1:
            raise EventDoesNotExist(f"cannot resume {channel} after {last_id}", current)
        if page is not None and len(rows) > count:
            page.more = True
        return [
            StreamEvent(channel, event_type, log.data_text(data), id=seq)
            for seq, event_type, data in rows[:count]
        ]

    def get_current_id(self, channel: str) -> int:
        return log.current_id(channel)

"""The SSE endpoints: GRIP instructions behind a proxy, a stream of their own otherwise.

django-eventstream serves them, reading the event log through
:class:`realtime.storage.EventLogStorage`. This module decides what a request
may resume from and shapes what the proxy is told.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import nullcontext
from typing import Any
from urllib.parse import quote, unquote

from asgiref.sync import sync_to_async
from django import db
from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django_eventstream import views as eventstream_views
from django_eventstream.utils import make_id, parse_last_event_id

from chatdemo.http import json_error
from realtime import direct, log
from realtime.storage import proxy_page

# A resume id as django-eventstream writes it: "<channel>:<id>[,<channel>:<id>...]",
# each channel name percent-encoded.
_LAST_EVENT_ID = re.compile(r"^[A-Za-z0-9_.~%-]+:\d{1,18}(,[A-Za-z0-9_.~%-]+:\d{1,18})*$")
_EVENT_NUMBER = re.compile(r"^\d{1,18}$")


def wants_stream(request: HttpRequest) -> bool:
    """Whether a request to a URL that serves both JSON and SSE asks for the stream.

    True when ``Accept`` lists ``text/event-stream`` (browsers' EventSource
    sends it), and for Pushpin's recovery requests (``?link=next``), which
    belong to a stream whatever headers they carry.
    """
    if request.GET.get("link") == "next":
        return True
    return any(
        (media.main_type.lower(), media.sub_type.lower()) == ("text", "event-stream")
        for media in request.accepted_types
    )


def stream(
    request: HttpRequest,
    channel: str,
    *,
    replay_latest: bool = False,
    snapshot: Callable[[], object] | None = None,
    refresh: Callable[[], object] | None = None,
) -> HttpResponse:
    """Serve ``channel`` as SSE: GRIP instructions behind a proxy, a stream otherwise.

    By default a client resumes after its ``Last-Event-ID`` (or from now), and
    gets every event it missed: right for a channel whose events add up, like
    chat messages.

    ``replay_latest=True`` is for a channel whose every event carries the whole
    state (a board's standings). A client that connects is resumed from just
    before the channel's latest event, unless it has already seen that one, so
    it gets the current state at once, as a stored event with its id, and then
    the live events after it, in order: never an older state after a newer one.
    ``snapshot`` stores a first event with the current state when the channel
    has none yet. ``refresh`` is called first on every request, Pushpin's
    recovery requests included: it stores a fresh event when the latest
    stored one no longer carries the committed state (its coalesced snapshot
    is still to come, or the process that was to take it stopped), so a
    client that connects never starts from an older state, and a held stream
    gets that state at its next recovery request at the latest. Pushpin's own
    recovery requests (``?link=next``) keep their position.

    With a proxy configured (``GRIP_URL``), only requests that come through
    it (a valid ``Grip-Sig``) are served; others get a JSON 421.

    The channel always comes from the URL: the signed ``es-meta`` token that
    django-eventstream puts in its next links is dropped, so a link cannot
    be replayed on another channel's URL.
    """
    grip = getattr(request, "grip", None)
    proxied = grip is not None and grip.proxied
    bad = _bad_position(request, channel, grip if proxied else None)
    if bad is not None:
        return bad
    if not proxied and settings.GRIP_URL:
        # With a proxy configured the app runs as WSGI (chatdemo.serve), which
        # cannot hold a stream; and a client that goes around the proxy, or
        # forges its signature, is not served as if it came through it. Refused
        # before a refresh could write anything on its behalf.
        return json_error(
            421,
            "Grip-Sig",
            "this app streams only through its GRIP proxy: connect through the proxy",
        )
    if refresh is not None:
        refresh()
    if replay_latest and request.GET.get("link") != "next":
        position = _replay_position(request, channel, snapshot)
        # django-eventstream reads the resume point from this header first.
        request.META["HTTP_LAST_EVENT_ID"] = make_id({channel: position})
    if "es-meta" in request.GET:
        query = request.GET.copy()
        del query["es-meta"]
        request.GET = QueryDict(query.urlencode())
    with proxy_page() if proxied else nullcontext() as page:
        response = eventstream_views.events(request, channels=[channel])
    instruct = getattr(grip, "instruct", None)
    if instruct is not None:
        _subscribe_to_events_only(instruct)
        if instruct.next_link:
            # django-eventstream builds the link from the decoded path: a room such
            # as "café" or "a,b" must be percent-encoded in Grip-Link (a "," there
            # would split the header's value in two).
            if instruct.next_link.startswith(f"{request.path}?"):
                encoded = quote(request.path, safe="/")
                instruct.next_link = encoded + instruct.next_link[len(request.path) :]
            # A page that left events behind holds the stream too (see
            # realtime.storage); the proxy comes back for the rest soon.
            more = page is not None and page.more
            instruct.next_link_timeout = (
                settings.REALTIME_CATCH_UP_SECONDS
                if more
                else settings.EVENTSTREAM_NEXT_LINK_TIMEOUT
            )
    if isinstance(response, StreamingHttpResponse) and response.is_async:
        content = response.streaming_content
        assert isinstance(content, AsyncIterator), "an async response streams asynchronously"
        response.streaming_content = _direct_stream(content)
    return response


def _bad_position(request: HttpRequest, channel: str, grip: Any) -> HttpResponse | None:
    """A 400 naming the header or parameter whose resume position cannot be parsed
    (``grip``: the proxy's request data, when the request came through it)."""
    for source, value in (
        ("Last-Event-ID", request.headers.get("Last-Event-ID")),
        ("lastEventId", request.GET.get("lastEventId")),
    ):
        if value and not _LAST_EVENT_ID.match(value):
            return json_error(400, source, f"{source} must look like '{channel}:<event id>'")
    if grip is not None:
        for value in grip.last.values():
            if not _EVENT_NUMBER.match(value):
                return json_error(400, "Grip-Last", "Grip-Last needs a numeric last-id")
    return None


def _subscribe_to_events_only(instruct: Any) -> None:
    """Keep only what our streams use of django-eventstream's GRIP subscription.

    django-eventstream also subscribes every stream to ``user-<id>`` (to kick
    a user off a channel) and runs the ``skip-users`` filter on every
    delivery (for ``send_event(skip_user_ids=...)``). Neither is used here,
    and both cost Pushpin work per stream and per delivery: at 5,000
    subscribers its handler spent about 30% more CPU per delivery on these
    streams than on bare ones (docs/BENCHMARKS.md). ``build-id`` stays: it
    renders each event's id and unescapes the ``%%`` in stored data.
    """
    instruct.channels = [c for c in instruct.channels if c.name.startswith("events-")]
    for channel in instruct.channels:
        channel.filters = [f for f in channel.filters if f != "skip-users"]


async def _direct_stream(chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A direct stream, once it starts: woken by this process's waker (realtime.direct),
    and giving its database connection back after each chunk.

    django-eventstream reads the database in the request's own thread and the
    connection stays open until the request ends: for a stream, until the
    client leaves. With one connection per open stream, PostgreSQL's
    max_connections (100 by default) capped direct mode near 100 subscribers
    per database (docs/BENCHMARKS.md). Closed after each read, it goes back to
    the pool (DATABASE_POOL_MAX_SIZE), or is opened again at the next read.
    """
    direct.ensure_waker()
    async for chunk in chunks:
        # thread_sensitive: the same thread, hence the same connection, as the reads.
        await sync_to_async(db.connections.close_all, thread_sensitive=True)()
        yield chunk


def _client_position(request: HttpRequest, channel: str) -> int | None:
    """The client's last seen event id in ``channel`` (header first, then ``lastEventId``)."""
    value = request.headers.get("Last-Event-ID") or request.GET.get("lastEventId")
    if not value:
        return None
    for name, event_id in parse_last_event_id(value).items():
        if unquote(name) == channel:
            return int(event_id)
    return None


def _replay_position(
    request: HttpRequest, channel: str, snapshot: Callable[[], object] | None
) -> int:
    """Where to resume a client so that it gets exactly the channel's latest event.

    The log never trims a channel's latest event (:func:`realtime.log.trim`),
    so resuming just before it always works once the channel has one.
    """
    current = log.current_id(channel)
    if current == 0 and snapshot is not None:
        snapshot()
        current = log.current_id(channel)
    if _client_position(request, channel) == current > 0:
        return current  # it has seen the latest state already
    # An id from before the latest, or one this log never issued.
    return max(current - 1, 0)

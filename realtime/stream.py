"""The SSE endpoints: GRIP instructions behind a proxy, a stream of their own otherwise.

django-eventstream serves them, reading the event log through
:class:`realtime.storage.EventLogStorage`. This module decides what a request
may resume from and shapes what the proxy is told.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import nullcontext
from typing import Any

from asgiref.sync import sync_to_async
from django import db
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from base.http import json_error
from realtime import direct, eventstream, grip, log
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
    Pushpin's own recovery requests (``?link=next``) keep their position.

    A stream request only reads the log: it never locks a channel nor stores
    an event. The state's writers keep the latest event current: a write that
    changes the state notifies the publisher, which stores the next snapshot
    within ``REALTIME_SNAPSHOT_INTERVAL_MS`` (:mod:`realtime.snapshots`), and
    the stream delivers it like any later event. So a client that connects
    just after a write gets the state before it, then the state with it.

    With a proxy configured (``GRIP_URL``), only requests that come through
    it (a valid ``Grip-Sig``) are served; others get a JSON 421.

    The channel always comes from the URL: the signed ``es-meta`` token that
    django-eventstream puts in its next links is dropped, so a link cannot
    be replayed on another channel's URL.
    """
    proxied = grip.proxied(request)
    bad = _bad_position(request, channel, proxied=proxied)
    if bad is not None:
        return bad
    if not proxied and grip.configured():
        # With a proxy configured the app runs as WSGI (chatdemo.serve), which
        # cannot hold a stream; and a client that goes around the proxy, or
        # forges its signature, is not served as if it came through it.
        return json_error(
            421,
            "Grip-Sig",
            "this app streams only through its GRIP proxy: connect through the proxy",
        )
    resume_after = None
    if replay_latest and request.GET.get("link") != "next":
        resume_after = _replay_position(request, channel)
    with proxy_page() if proxied else nullcontext() as page:
        response = eventstream.serve(request, channel, resume_after=resume_after)
    if proxied:
        # A page that left events behind holds the stream too (see
        # realtime.storage); the proxy comes back for the rest soon.
        more = page is not None and page.more
        if grip.shape_stream_instruction(
            request,
            response,
            keep_channel=eventstream.is_grip_channel,
            next_link_timeout=settings.REALTIME_CATCH_UP_SECONDS
            if more
            else settings.EVENTSTREAM_NEXT_LINK_TIMEOUT,
        ):
            eventstream.plain_grip_body(response)
    if isinstance(response, StreamingHttpResponse) and response.is_async:
        content = response.streaming_content
        assert isinstance(content, AsyncIterator), "an async response streams asynchronously"
        response.streaming_content = _direct_stream(content)
    return response


def _bad_position(request: HttpRequest, channel: str, *, proxied: bool) -> HttpResponse | None:
    """A 400 naming the header or parameter whose resume position cannot be parsed
    (``Grip-Last`` too, when the request came through the proxy)."""
    for source, value in (
        ("Last-Event-ID", request.headers.get("Last-Event-ID")),
        ("lastEventId", request.GET.get("lastEventId")),
    ):
        if value and not _LAST_EVENT_ID.fullmatch(value):
            return json_error(400, source, f"{source} must look like '{channel}:<event id>'")
    if proxied:
        for value in grip.last_ids(request).values():
            if not _EVENT_NUMBER.fullmatch(value):
                return json_error(400, "Grip-Last", "Grip-Last needs a numeric last-id")
    return None


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
    return eventstream.resume_position(value, channel) if value else None


def _replay_position(request: HttpRequest, channel: str) -> int:
    """Where to resume a client so that it gets exactly the channel's latest event.

    The log never trims a channel's latest event (:func:`realtime.log.trim`),
    so resuming just before it always works once the channel has one (a
    channel with none yet gets its first event when the publisher stores it).
    """
    current = log.current_id(channel)
    if _client_position(request, channel) == current > 0:
        return current  # it has seen the latest state already
    # An id from before the latest, or one this log never issued.
    return max(current - 1, 0)

"""The door to django-eventstream: the one module of the project that imports it.

What we use of it through its documented interfaces:

- its ``events`` view, given the stream's channel as a view keyword (``channels``);
- the storage class (``EVENTSTREAM_STORAGE_CLASS``): :class:`realtime.storage.EventLogStorage`
  reads our event log, built on :class:`StorageBase`;
- the channel manager (``EVENTSTREAM_CHANNELMANAGER_CLASS``): :class:`ViewChannelManager`;
- the SSE resume inputs, the ``Last-Event-ID`` header and the ``lastEventId`` parameter.

What else we rely on is not documented. docs/BORROWED.md lists each such
behaviour with the test that fails when it changes, and pyproject.toml pins
django-eventstream below its next minor release.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from django.http import HttpRequest, HttpResponse, QueryDict
from django_eventstream import views as _views
from django_eventstream.channelmanager import DefaultChannelManager
from django_eventstream.event import Event as StreamEvent
from django_eventstream.storage import EventDoesNotExist, StorageBase
from django_eventstream.utils import make_id, parse_last_event_id, sse_encode_event

__all__ = [
    "EventDoesNotExist",
    "StorageBase",
    "StreamEvent",
    "ViewChannelManager",
    "grip_channel",
    "is_grip_channel",
    "plain_grip_body",
    "proxy_sse",
    "resume_id",
    "resume_position",
    "serve",
    "wake",
    "watched",
]

# The GRIP channel that django-eventstream subscribes a stream of channel ``c`` to is
# "events-" + quote(c) (its eventresponse.py), and our publishes must use the same.
_GRIP_PREFIX = "events-"


def grip_channel(channel: str) -> str:
    """The GRIP channel carrying ``channel``'s events to the proxy's streams."""
    return _GRIP_PREFIX + quote(channel)


def is_grip_channel(name: str) -> bool:
    """Whether a GRIP channel of a stream's instruction carries events (not users' kicks)."""
    return name.startswith(_GRIP_PREFIX)


def resume_id(channel: str, event_id: int) -> str:
    """The SSE id a client resumes after: ``<channel>:<id>``, as the streams write it."""
    return str(make_id({channel: event_id}))


def resume_position(value: str, channel: str) -> int | None:
    """The event id that a ``Last-Event-ID`` value gives for ``channel``, if it names it."""
    for name, event_id in parse_last_event_id(value).items():
        if unquote(name) == channel:
            return int(event_id)
    return None


def proxy_sse(channel: str, event_id: int, event_type: str, data_text: str) -> str:
    """An event as the SSE text published to the proxy: its id (:func:`resume_id`)
    rendered here, as django-eventstream writes it in a stream's first answer."""
    return str(sse_encode_event(event_type, data_text, event_id=resume_id(channel, event_id)))


def plain_grip_body(response: HttpResponse) -> None:
    """Undo the escaping django-eventstream applies to a GRIP answer's events.

    It doubles every ``%`` of their data (and type) for Pushpin's ``build-id``
    filter, which renders ids at delivery and turns ``%%`` back into ``%``. Our
    streams do not use that filter (the publisher renders ids,
    :func:`proxy_sse`), so the proxy passes the body as it is, and it must
    carry the data as stored. Nothing else in that body has ``%%``: ids hold
    quoted channel names, where a ``%`` is always followed by two hex digits.
    """
    response.content = response.content.replace(b"%%", b"%")


class ViewChannelManager(DefaultChannelManager):
    """A stream's channel comes from the view (:func:`serve`), never from the client.

    The default manager falls back to ``?channel=`` parameters when the view
    names none; this one serves no channel then.
    """

    def get_channels_for_request(
        self, request: HttpRequest, view_kwargs: dict[str, Any]
    ) -> set[str]:
        return set(view_kwargs.get("channels", ()))


def serve(request: HttpRequest, channel: str, *, resume_after: int | None = None) -> HttpResponse:
    """django-eventstream's answer to a stream request for ``channel``.

    ``resume_after`` overrides the client's own position. The signed
    ``es-meta`` parameter that django-eventstream puts in its next links is
    dropped: it would name the channels itself, and the channel always comes
    from the URL, so a link cannot be replayed on another channel's URL.
    """
    if resume_after is not None:
        # django-eventstream reads the resume point from this header first.
        request.META["HTTP_LAST_EVENT_ID"] = resume_id(channel, resume_after)
    if "es-meta" in request.GET:
        query = request.GET.copy()
        del query["es-meta"]
        request.GET = QueryDict(query.urlencode())
    response: HttpResponse = _views.events(request, channels=[channel])
    return response


def watched() -> set[str]:
    """The channels that this process's direct streams listen to."""
    manager = _views.get_listener_manager()
    with manager.lock:
        return set(manager.listeners_by_channel)


def wake(names: set[str]) -> None:
    """Make this process's direct streams of ``names`` read what they miss from the storage.

    A listener marked ``overflow`` re-reads from the storage class after its
    last id: the path django-eventstream takes itself when a listener's
    queue is full.
    """
    manager = _views.get_listener_manager()
    with manager.lock:
        listeners = {
            listener for name in names for listener in manager.listeners_by_channel.get(name, ())
        }
        for listener in listeners:
            listener.overflow = True
    for listener in listeners:
        listener.wake_threadsafe()

"""What we borrow from the GRIP libraries that they do not document: one test per behaviour,
against the library itself, so that a release that changes one fails here by name.

docs/BORROWED.md lists the same behaviours, where we rely on each, and the bounds in
pyproject.toml that keep us on the releases these tests passed with.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import RequestFactory
from django_eventstream import views as eventstream_views
from django_eventstream.event import Event as StreamEvent
from django_eventstream.eventrequest import EventRequest
from django_eventstream.eventresponse import EventResponse
from django_eventstream.eventstream import get_events
from django_eventstream.storage import StorageBase
from django_eventstream.utils import make_id, parse_last_event_id, sse_encode_event
from django_grip import GripData, GripInstruct, GripMiddleware
from gripcontrol import Channel


def test_eventstream_ids_are_the_quoted_channel_a_colon_and_the_number() -> None:
    """realtime.eventstream.resume_id / resume_position; the ids our clients resume from."""
    assert make_id({"room-a": 3}) == "room-a:3"
    assert make_id({"café": 4, "b": 5}) == "caf%C3%A9:4,b:5"
    assert parse_last_event_id("room-a:3,caf%C3%A9:4") == {"room-a": "3", "caf%C3%A9": "4"}


def _proxied_request(path: str = "/rooms/a/events/", **meta: Any) -> Any:
    request = RequestFactory().get(path, **meta)
    request.grip = GripData()
    request.grip.proxied = True
    return request


def test_eventstream_subscribes_a_stream_to_events_channel_with_build_id_and_a_user_channel() -> (
    None
):
    """realtime.eventstream.grip_channel (our publishes go there) and
    realtime.grip.shape_stream_instruction (which drops the rest)."""
    response = EventResponse()
    response.channel_items = {"café": []}
    response.channel_last_ids = {"café": "4"}
    request = _proxied_request()
    response.to_grip_response(request)
    channels = [(c.name, c.prev_id, c.filters) for c in request.grip.instruct.channels]
    assert channels == [
        ("events-caf%C3%A9", "4", ["build-id", "skip-users"]),
        ("user-anonymous", None, ["require-sub"]),
    ]
    assert request.grip.instruct.hold == "stream"


def test_eventstream_next_link_carries_es_meta_naming_the_channels() -> None:
    """realtime.eventstream.serve drops es-meta, which would override the URL's channel."""
    response = EventResponse()
    response.channel_items = {"room-a": []}
    response.channel_last_ids = {"room-a": "1"}
    request = _proxied_request()
    response.to_grip_response(request)
    link = request.grip.instruct.next_link
    assert link.startswith("/rooms/a/events/?")
    token = dict(p.split("=", 1) for p in link.split("?", 1)[1].split("&"))["es-meta"]
    claims = jwt.decode(token, django_settings.SECRET_KEY.encode(), algorithms=["HS256"])
    assert claims["channels"] == ["room-a"]
    forged = jwt.encode(
        {"channels": ["room-b"], "exp": int(time.time()) + 60},
        django_settings.SECRET_KEY.encode(),
    )
    request = _proxied_request(f"/rooms/a/events/?es-meta={forged}")
    assert EventRequest(request, view_kwargs={"channels": ["room-a"]}).channels == ["room-b"]


def test_eventstream_reads_the_resume_point_from_the_header_before_the_parameter() -> None:
    """realtime.eventstream.serve sets the header to resume a board's stream."""
    request = RequestFactory().get(
        "/boards/1/?lastEventId=board-1:2", HTTP_LAST_EVENT_ID="board-1:7"
    )
    parsed = EventRequest(request, view_kwargs={"channels": ["board-1"]})
    assert parsed.channel_last_ids == {"board-1": "7"}


class _Pages(StorageBase):
    """A storage that returns ``returned`` events and records the limit it was asked for."""

    asked: list[int] = []
    returned = 0

    def get_events(self, channel: str, last_id: int, limit: int = 100) -> list[Any]:
        from django_eventstream.event import Event

        self.asked.append(limit)
        return [
            Event(channel, "message", "{}", id=last_id + n) for n in range(1, self.returned + 1)
        ]

    def get_current_id(self, channel: str) -> int:
        return 1000


@pytest.mark.parametrize(("returned", "holds"), [(100, True), (101, False)])
def test_eventstream_holds_an_answer_unless_the_storage_returned_all_it_asked_for(
    settings: Any, returned: int, holds: bool
) -> None:
    """realtime.storage returns one event fewer than asked, so that every answer holds."""
    settings.EVENTSTREAM_STORAGE_CLASS = f"{__name__}._Pages"
    _Pages.asked, _Pages.returned = [], returned
    request = EventRequest(
        RequestFactory().get("/e/", HTTP_LAST_EVENT_ID="room-a:0"),
        view_kwargs={"channels": ["room-a"]},
    )
    response = get_events(request)
    assert _Pages.asked == [101]
    assert (response.channel_more == set()) is holds


def test_eventstream_doubles_percent_in_a_grip_answers_event_data_only() -> None:
    """realtime.eventstream.plain_grip_body undoes it (our streams have no build-id
    filter to); realtime.eventstream.proxy_sse writes what the publisher sends unescaped."""
    response = EventResponse()
    response.channel_items = {"café": [StreamEvent("café", "message", '{"t": "100%"}', id=4)]}
    response.channel_last_ids = {"café": 3}
    response.is_next = True
    body = response.to_grip_response(_proxied_request()).content.decode()
    assert body == 'event: message\nid: caf%C3%A9:4\ndata: {"t": "100%%"}\n\n'
    assert (
        sse_encode_event("message", '{"t": "100%"}', event_id="room-a:4")
        == 'event: message\nid: room-a:4\ndata: {"t": "100%"}\n\n'
    )


def test_eventstream_listeners_are_woken_by_marking_them_overflowed() -> None:
    """realtime.eventstream.wake / watched: direct streams re-read the storage when woken."""
    manager = eventstream_views.get_listener_manager()
    listener = eventstream_views.Listener()
    listener.channels = {"room-a"}
    listener.user_id = "anonymous"
    manager.add_listener(listener)
    try:
        with manager.lock:
            assert listener in manager.listeners_by_channel["room-a"]
        assert listener.overflow is False
        listener.overflow = True
        assert callable(listener.wake_threadsafe)
    finally:
        manager.remove_listener(listener)
    assert "room-a" not in manager.listeners_by_channel


def test_grip_instruction_channels_are_a_list_the_response_is_rendered_from() -> None:
    """realtime.grip.shape_stream_instruction edits the list and each channel's filters."""
    request = _proxied_request()
    instruct: GripInstruct = request.grip.start_instruct()
    kept = Channel("events-room-a", prev_id="3")
    kept.filters = ["build-id", "skip-users"]
    instruct.add_channel(kept)
    instruct.add_channel(Channel("user-anonymous"))
    instruct.set_hold_stream()
    instruct.channels = [c for c in instruct.channels if c.name.startswith("events-")]
    kept.filters = ["build-id"]
    response = GripMiddleware(lambda r: HttpResponse()).process_response(request, HttpResponse())
    assert response["Grip-Channel"] == "events-room-a; prev-id=3; filter=build-id"


def test_grip_middleware_keeps_a_grip_link_the_response_has_when_the_instruction_has_none() -> None:
    """realtime.grip.shape_stream_instruction writes Grip-Link itself (django-grip cannot
    say timeout=0) and empties the instruction's next_link."""
    request = _proxied_request()
    instruct: GripInstruct = request.grip.start_instruct()
    instruct.add_channel(Channel("events-room-a", prev_id="3"))
    instruct.set_hold_stream()
    instruct.set_next_link("/e/?link=next", timeout=5)
    instruct.next_link = ""
    response = HttpResponse()
    response["Grip-Link"] = "</e/?link=next>; rel=next; timeout=0"
    response = GripMiddleware(lambda r: HttpResponse()).process_response(request, response)
    assert response["Grip-Link"] == "</e/?link=next>; rel=next; timeout=0"
    assert response["Grip-Hold"] == "stream"

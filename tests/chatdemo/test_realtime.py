"""The realtime module's write path: events stored in django-eventstream's
layout, in the caller's transaction, readable by django-eventstream itself."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from django.db import transaction
from django.utils import timezone
from django_eventstream.models import Event, EventCounter
from django_eventstream.utils import get_storage, make_id, parse_last_event_id

from chatdemo import realtime

pytestmark = pytest.mark.django_db


def test_lock_channel_returns_the_next_event_id() -> None:
    with transaction.atomic():
        assert realtime.lock_channel("room-a") == 1
        assert realtime.send("room-a", "message", {"n": 1}) == 1
    with transaction.atomic():
        assert realtime.lock_channel("room-a") == 2


@pytest.mark.django_db(transaction=True)  # no test transaction around it
def test_lock_channel_outside_transaction_raises() -> None:
    with pytest.raises(RuntimeError, match=r"inside transaction\.atomic"):
        realtime.lock_channel("room-a")


def test_send_without_lock_on_new_channel_raises() -> None:
    with pytest.raises(RuntimeError, match="needs lock_channel"), transaction.atomic():
        realtime.send("room-new", "message", {})


def test_send_stores_events_that_django_eventstream_reads(
    published: list, django_capture_on_commit_callbacks: Any
) -> None:
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            realtime.lock_channel("room-a")
            realtime.send("room-a", "message", {"n": n})
    storage = get_storage()
    assert storage.get_current_id("room-a") == 3
    # Resume from 0 (the placeholder) and from the middle, as a client would.
    assert [(e.id, e.type, e.data) for e in storage.get_events("room-a", 0)] == [
        (1, "message", '{"n": 0}'),
        (2, "message", '{"n": 1}'),
        (3, "message", '{"n": 2}'),
    ]
    assert [e.id for e in storage.get_events("room-a", 2)] == [3]
    assert published == [("room-a", "message", {"n": n}) for n in range(3)]


def test_send_rolled_back_leaves_counter_and_events_untouched(published: list) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        realtime.lock_channel("room-a")
        realtime.send("room-a", "message", {"n": 1})
        raise RuntimeError("abort")
    assert get_storage().get_current_id("room-a") == 0
    assert not Event.objects.filter(channel="room-a").exists()


def test_send_publishes_only_after_commit(
    published: list, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        realtime.lock_channel("room-a")
        realtime.send("room-a", "message", {"n": 1})
        assert published == []
    assert published == [("room-a", "message", {"n": 1})]


def test_trim_events_deletes_expired_at_most_once_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    with transaction.atomic():
        realtime.lock_channel("room-a")
        realtime.send("room-a", "message", {"n": 1})
    old = timezone.now() - datetime.timedelta(hours=25)
    Event.objects.filter(channel="room-a").update(created=old)
    monkeypatch.setattr(realtime, "_last_trim", 0.0)
    realtime._trim_events()
    assert not Event.objects.filter(channel="room-a").exists()
    assert EventCounter.objects.get(name="room-a").value == 1  # ids never go back

    with transaction.atomic():
        realtime.lock_channel("room-a")
        realtime.send("room-a", "message", {"n": 2})
    Event.objects.filter(channel="room-a").update(created=old)
    realtime._trim_events()  # within the minute: no second pass
    assert Event.objects.filter(channel="room-a").count() == 1


# --- retries of failed publishes --------------------------------------------------


def test_publish_retries_back_off_then_give_up() -> None:
    retries = realtime.PublishRetries()
    delays = [retries.failed("room-a", 7, attempt) for attempt in range(retries.ATTEMPTS)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, None]
    assert not retries.still_wanted("room-a", 7)


def test_publish_retry_dropped_once_a_later_event_is_published() -> None:
    """The later publish's prev-id gap makes Pushpin recover the earlier event."""
    retries = realtime.PublishRetries()
    retries.failed("room-a", 7, 0)
    retries.failed("room-a", 9, 0)
    retries.failed("room-b", 7, 0)
    retries.succeeded("room-a", 8)
    assert not retries.still_wanted("room-a", 7)
    assert retries.still_wanted("room-a", 9)
    assert retries.still_wanted("room-b", 7)
    retries.succeeded("room-a", 9)
    assert not retries.still_wanted("room-a", 9)


def _message(text: str) -> Any:
    from chat.models import Message

    return Message(room="a", author="Ann", text=text)


def test_insert_and_send_stores_row_and_event_readable_by_django_eventstream(
    published: list, django_capture_on_commit_callbacks: Any
) -> None:
    from chat.selectors import message_payload

    sent = []
    for text in ("first", 'second <b>\u00e9\u2603 "quoted"</b>\n'):
        message = _message(text)
        with django_capture_on_commit_callbacks(execute=True):
            event_id = realtime.insert_and_send(
                "room-a", "message", message, message_payload, event_id_field="event_id"
            )
        sent.append(message)
        assert (message.pk is not None, message.event_id) == (True, event_id)
    # The first event also creates the channel's counter, then both take the one statement.
    assert [m.event_id for m in sent] == [1, 2]
    assert sent[0].pk < sent[1].pk
    payloads = [message_payload(m) for m in sent]
    assert published == [("room-a", "message", p) for p in payloads]
    stored = get_storage().get_events("room-a", 0)
    assert [(e.id, e.type, json.loads(e.data)) for e in stored] == [
        (1, "message", payloads[0]),
        (2, "message", payloads[1]),
    ]
    assert Event.objects.filter(channel="room-a", eid=0).count() == 1


def test_insert_and_send_rolled_back_stores_and_publishes_nothing(
    published: list, django_capture_on_commit_callbacks: Any
) -> None:
    from chat.models import Message
    from chat.selectors import message_payload

    realtime.insert_and_send(
        "room-a", "message", _message("kept"), message_payload, event_id_field="event_id"
    )
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        realtime.insert_and_send(
            "room-a", "message", _message("gone"), message_payload, event_id_field="event_id"
        )
        raise RuntimeError("roll back")
    assert [m.text for m in Message.objects.all()] == ["kept"]
    assert EventCounter.objects.get(name="room-a").value == 1
    assert list(
        Event.objects.filter(channel="room-a", eid__gt=0).values_list("eid", flat=True)
    ) == [1]
    assert [p["text"] for _c, _t, p in published] == []


def test_insert_and_send_payload_without_pk_raises_and_stores_nothing(published: list) -> None:
    from chat.models import Message

    realtime.insert_and_send(
        "room-a", "message", _message("kept"), lambda m: {"id": m.pk}, event_id_field="event_id"
    )
    with pytest.raises(ValueError, match=r"instance\.pk exactly once"):
        realtime.insert_and_send(
            "room-a",
            "message",
            _message("x"),
            lambda m: {"text": m.text},
            event_id_field="event_id",
        )
    assert Message.objects.count() == 1
    assert EventCounter.objects.get(name="room-a").value == 1


@pytest.mark.parametrize("room", ["default", "A-b_9", "team.chat", "x" * 100])
def test_room_channel_of_a_plain_name_is_readable(room: str) -> None:
    assert realtime.room_channel(room) == f"room-{room}"


@pytest.mark.parametrize(
    "room", ["café", "a:b", "a,b", "with space", "100%", "a~b", "x" * 99 + "é"]
)
def test_room_channel_of_any_other_name_needs_no_escaping(room: str) -> None:
    """Nothing in it that an SSE id or Pushpin would need to escape: no "%", ":" or ","."""
    channel = realtime.room_channel(room)
    assert re.fullmatch(r"room~[0-9a-f]{32}", channel)
    assert quote(channel) == channel
    assert make_id({channel: 7}) == f"{channel}:7"
    assert parse_last_event_id(make_id({channel: 7})) == {channel: "7"}


def test_room_channel_names_differ_for_different_rooms() -> None:
    rooms = ["café", "cafe", "a:b", "a,b", "a b", "room~x", "a~b"]
    assert len({realtime.room_channel(r) for r in rooms}) == len(rooms)

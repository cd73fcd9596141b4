"""The event log's write path: events stored in the caller's transaction, and read
back through django-eventstream's storage class."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from django_eventstream.storage import EventDoesNotExist
from django_eventstream.utils import get_storage

from realtime import log, notify
from realtime import storage as storage_module
from realtime.models import Channel, Event
from tests.conftest import Drain

pytestmark = pytest.mark.django_db


def test_lock_channel_returns_the_next_event_id() -> None:
    with transaction.atomic():
        assert log.lock_channel("room-a") == 1
        assert log.send("room-a", "message", {"n": 1}) == 1
    with transaction.atomic():
        assert log.lock_channel("room-a") == 2


@pytest.mark.django_db(transaction=True)  # no test transaction around it
def test_lock_channel_outside_transaction_raises() -> None:
    with pytest.raises(RuntimeError, match=r"inside transaction\.atomic"):
        log.lock_channel("room-a")


def test_send_without_lock_on_new_channel_raises() -> None:
    with pytest.raises(RuntimeError, match="needs lock_channel"), transaction.atomic():
        log.send("room-new", "message", {})


def test_send_stores_events_that_the_storage_class_reads(published: Drain) -> None:
    for n in range(3):
        with transaction.atomic():
            log.lock_channel("room-a")
            log.send("room-a", "message", {"n": n})
    storage = get_storage()
    assert storage.get_current_id("room-a") == 3
    # Resume from 0 and from the middle, as a client would.
    assert [(e.id, e.type, e.data) for e in storage.get_events("room-a", 0)] == [
        (1, "message", '{"n": 0}'),
        (2, "message", '{"n": 1}'),
        (3, "message", '{"n": 2}'),
    ]
    assert [e.id for e in storage.get_events("room-a", 2)] == [3]
    assert published() == [("room-a", "message", {"n": n}) for n in range(3)]


def test_send_rolled_back_leaves_counter_and_events_untouched(published: Drain) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        log.lock_channel("room-a")
        log.send("room-a", "message", {"n": 1})
        raise RuntimeError("abort")
    assert get_storage().get_current_id("room-a") == 0
    assert not Event.objects.exists()


@pytest.mark.django_db(transaction=True)  # real commits, seen from another connection
def test_send_notifies_listeners_only_on_commit() -> None:
    with notify.listening() as listener:
        with transaction.atomic():
            log.lock_channel("room-a")
            log.send("room-a", "message", {"n": 1})
            assert notify.wait(listener, 0.2) == notify.Commits()
        assert notify.wait(listener, 5) == notify.Commits(events={"room-a"})
        with pytest.raises(RuntimeError), transaction.atomic():
            log.lock_channel("room-a")
            log.send("room-a", "message", {"n": 2})
            raise RuntimeError("roll back")
        assert notify.wait(listener, 0.2) == notify.Commits()


def _age_all_events() -> None:
    Event.objects.update(created=timezone.now() - log.retention() - datetime.timedelta(hours=1))


def test_trim_deletes_expired_events_but_each_channel_keeps_its_latest() -> None:
    for channel, count in (("room-a", 3), ("room-b", 1)):
        for n in range(count):
            with transaction.atomic():
                log.lock_channel(channel)
                log.send(channel, "message", {"n": n})
    _age_all_events()
    with transaction.atomic():
        log.lock_channel("room-a")
        log.send("room-a", "message", {"n": "fresh"})
    assert log.trim() == 3
    assert sorted(Event.objects.values_list("channel__name", "seq")) == [
        ("room-a", 4),
        ("room-b", 1),
    ]
    assert Channel.objects.get(name="room-a").last_id == 4  # ids never go back


# --- reads through the storage class ------------------------------------------------


def _send(channel: str, count: int) -> None:
    for n in range(count):
        with transaction.atomic():
            log.lock_channel(channel)
            log.send(channel, "message", {"n": n})


def test_storage_resumes_after_any_stored_position() -> None:
    _send("room-a", 3)
    storage = get_storage()
    assert [e.id for e in storage.get_events("room-a", 1, limit=1)] == [2]
    assert storage.get_events("room-a", 3) == []
    assert storage.get_current_id("room-b") == 0
    assert storage.get_events("room-b", 0) == []


@pytest.mark.parametrize("position", [4, 99])
def test_storage_refuses_an_id_it_never_issued(position: int) -> None:
    _send("room-a", 3)
    with pytest.raises(EventDoesNotExist) as error:
        get_storage().get_events("room-a", position)
    assert error.value.current_id == 3


def test_storage_refuses_a_position_whose_next_event_was_trimmed() -> None:
    _send("room-a", 3)
    _age_all_events()
    log.trim()
    storage = get_storage()
    with pytest.raises(EventDoesNotExist) as error:
        storage.get_events("room-a", 0)
    assert error.value.current_id == 3
    assert [e.id for e in storage.get_events("room-a", 2)] == [3]


def test_storage_pages_for_the_proxy_leave_room_and_say_what_is_left(settings: Any) -> None:
    """django-eventstream pages with "more" (no hold) when it gets as many events as it asked
    for; for the proxy, a read returns fewer, so every answer holds the stream."""
    settings.REALTIME_PAGE_SIZE = 2
    _send("room-a", 5)
    storage = get_storage()
    with storage_module.proxy_page() as page:
        assert [e.id for e in storage.get_events("room-a", 0, limit=101)] == [1, 2]
    assert page.more
    with storage_module.proxy_page() as page:
        assert [e.id for e in storage.get_events("room-a", 3, limit=101)] == [4, 5]
    assert not page.more
    settings.REALTIME_PAGE_SIZE = 100
    with storage_module.proxy_page() as page:
        assert [e.id for e in storage.get_events("room-a", 0, limit=4)] == [1, 2, 3]
    assert page.more
    # Outside a proxied request: django-eventstream's own paging.
    assert [e.id for e in storage.get_events("room-a", 0, limit=4)] == [1, 2, 3, 4]


def _message(text: str) -> Any:
    from chat.models import Message

    return Message(room="a", author="Ann", text=text)


def test_insert_and_send_stores_row_and_event_that_the_storage_class_reads(
    published: Drain,
) -> None:
    from chat.selectors import message_payload

    sent = []
    for text in ("first", 'second <b>\u00e9\u2603 "quoted"</b>\n'):
        message = _message(text)
        event_id = log.insert_and_send(
            "room-a", "message", message, message_payload, event_id_field="event_id"
        )
        sent.append(message)
        assert (message.pk is not None, message.event_id) == (True, event_id)
    # The first event also creates the channel's row, then both take the one statement.
    assert [m.event_id for m in sent] == [1, 2]
    assert sent[0].pk < sent[1].pk
    payloads = [message_payload(m) for m in sent]
    assert published() == [("room-a", "message", p) for p in payloads]
    stored = get_storage().get_events("room-a", 0)
    assert [(e.id, e.type, json.loads(e.data)) for e in stored] == [
        (1, "message", payloads[0]),
        (2, "message", payloads[1]),
    ]


def test_insert_and_send_rolled_back_stores_and_publishes_nothing(published: Drain) -> None:
    from chat.models import Message
    from chat.selectors import message_payload

    log.insert_and_send(
        "room-a", "message", _message("kept"), message_payload, event_id_field="event_id"
    )
    with (
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        log.insert_and_send(
            "room-a", "message", _message("gone"), message_payload, event_id_field="event_id"
        )
        raise RuntimeError("roll back")
    assert [m.text for m in Message.objects.all()] == ["kept"]
    assert Channel.objects.get(name="room-a").last_id == 1
    assert list(Event.objects.values_list("seq", flat=True)) == [1]
    assert [p["text"] for _c, _t, p in published()] == ["kept"]


def test_insert_and_send_payload_without_pk_raises_and_stores_nothing(published: Drain) -> None:
    from chat.models import Message

    log.insert_and_send(
        "room-a", "message", _message("kept"), lambda m: {"id": m.pk}, event_id_field="event_id"
    )
    with pytest.raises(ValueError, match=r"instance\.pk exactly once"):
        log.insert_and_send(
            "room-a",
            "message",
            _message("x"),
            lambda m: {"text": m.text},
            event_id_field="event_id",
        )
    assert Message.objects.count() == 1
    assert Channel.objects.get(name="room-a").last_id == 1

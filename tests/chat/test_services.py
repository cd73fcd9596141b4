from __future__ import annotations

import pytest
from django.db import transaction

from base.errors import InvalidField
from chat.models import Message
from chat.selectors import message_payload, room_history
from chat.services import message_post
from realtime.models import Event
from tests.conftest import Drain

pytestmark = pytest.mark.django_db


def test_message_post_stores_message_and_publishes_after_commit(published: Drain) -> None:
    message = message_post(room="lobby", author="Ann", text="hello")
    stored = Message.objects.get()
    assert (stored.room, stored.author, stored.text) == ("lobby", "Ann", "hello")
    assert published() == [("room-lobby", "message", message_payload(message))]


def test_message_post_stores_event_in_same_transaction(published: Drain) -> None:
    message = message_post(room="lobby", author="Ann", text="hello")
    event = Event.objects.get(channel__name="room-lobby", seq=message.event_id)
    assert event.type == "message"
    assert message.event_id == 1


def test_message_post_rolled_back_publishes_nothing(published: Drain) -> None:
    with (
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        message_post(room="lobby", author="Ann", text="never")
        raise RuntimeError("roll back")
    assert published() == []
    assert not Message.objects.exists()
    assert not Event.objects.filter(channel__name="room-lobby", type="message").exists()


def test_message_post_invalid_field_stores_nothing(published: Drain) -> None:
    with pytest.raises(InvalidField) as error:
        message_post(room="lobby", author="Ann", text="   ")
    assert error.value.field == "text"
    assert not Message.objects.exists()
    assert not Event.objects.exists()


def test_message_post_event_ids_follow_message_ids(published: Drain) -> None:
    messages = [message_post(room="lobby", author="Ann", text=str(i)) for i in range(5)]
    assert [m.event_id for m in messages] == [1, 2, 3, 4, 5]
    assert [m.pk for m in messages] == sorted(m.pk for m in messages)


def test_room_history_newest_first_limited_with_resume_point(published: Drain) -> None:
    for i in range(55):
        message_post(room="lobby", author="Ann", text=str(i))
    message_post(room="other", author="Bob", text="elsewhere")
    history = room_history(room="lobby")
    assert [m.text for m in history.messages] == [str(i) for i in range(54, 4, -1)]
    assert history.last_event_id == "room-lobby:55"


def test_room_history_empty_room_resumes_from_zero() -> None:
    history = room_history(room="empty")
    assert history.messages == []
    assert history.last_event_id == "room-empty:0"


def test_message_payload_shape(published: Drain) -> None:
    message = message_post(room="lobby", author="Ann", text="hi")
    assert message_payload(message) == {
        "id": message.pk,
        "from": "Ann",
        "date": message.created.isoformat(),
        "text": "hi",
    }

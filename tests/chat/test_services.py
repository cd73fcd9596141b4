from __future__ import annotations

import concurrent.futures
import threading

import pytest
from django.db import connection, transaction

from base.errors import InvalidField, NotFound
from chat.models import Message
from chat.selectors import message_payload, room_history
from chat.services import message_delete, message_post
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


# --- message_delete -------------------------------------------------------------------


def test_message_delete_removes_row_and_publishes_one_event(published: Drain) -> None:
    message = message_post(room="lobby", author="Ann", text="rude")
    published()
    deleted = message_delete(message_id=message.pk)
    assert (deleted.pk, deleted.room, deleted.text) == (message.pk, "lobby", "rude")
    assert not Message.objects.exists()
    assert published() == [("room-lobby", "message-delete", {"id": message.pk, "room": "lobby"})]


def test_message_delete_event_follows_the_message_event(published: Drain) -> None:
    message = message_post(room="lobby", author="Ann", text="rude")
    message_delete(message_id=message.pk)
    events = list(
        Event.objects.filter(channel__name="room-lobby").order_by("seq").values_list("seq", "type")
    )
    assert events == [(1, "message"), (2, "message-delete")]


def test_message_delete_rolled_back_keeps_message_and_stores_no_event(published: Drain) -> None:
    message = message_post(room="lobby", author="Ann", text="stays")
    published()
    with pytest.raises(RuntimeError), transaction.atomic():
        message_delete(message_id=message.pk)
        raise RuntimeError("roll back")
    assert list(Message.objects.values_list("pk", flat=True)) == [message.pk]
    assert not Event.objects.filter(type="message-delete").exists()
    assert published() == []


def test_message_delete_twice_is_not_found_and_stores_one_event(published: Drain) -> None:
    message = message_post(room="lobby", author="Ann", text="rude")
    message_delete(message_id=message.pk)
    with pytest.raises(NotFound) as error:
        message_delete(message_id=message.pk)
    assert (error.value.field, error.value.message) == ("message", "no such message")
    assert Event.objects.filter(type="message-delete").count() == 1


@pytest.mark.parametrize("message_id", [0, -1, 999_999, 2**63])
def test_message_delete_unknown_id_is_not_found(message_id: int, published: Drain) -> None:
    message_post(room="lobby", author="Ann", text="stays")
    published()
    with pytest.raises(NotFound) as error:
        message_delete(message_id=message_id)
    assert error.value.field == "message"
    assert Message.objects.count() == 1
    assert published() == []


def test_message_delete_only_that_message_leaves_the_history(published: Drain) -> None:
    kept = [message_post(room="lobby", author="Ann", text=t) for t in ("one", "two")]
    gone = message_post(room="lobby", author="Bob", text="rude")
    message_delete(message_id=gone.pk)
    history = room_history(room="lobby")
    assert [m.pk for m in history.messages] == [kept[1].pk, kept[0].pk]
    # The resume point is after the delete: a page that loads this history never
    # gets the deleted message's `message` event (event 3) from the stream.
    assert history.last_event_id == "room-lobby:4"


def test_room_history_after_deleting_every_message_resumes_after_the_deletes(
    published: Drain,
) -> None:
    message = message_post(room="lobby", author="Ann", text="rude")
    message_delete(message_id=message.pk)
    history = room_history(room="lobby")
    assert (history.messages, history.last_event_id) == ([], "room-lobby:2")


@pytest.mark.django_db(transaction=True)
def test_message_delete_racing_itself_stores_one_event() -> None:
    message = message_post(room="lobby", author="Ann", text="rude")
    start = threading.Barrier(2)

    def delete() -> str:
        start.wait(timeout=10)
        try:
            message_delete(message_id=message.pk)
        except NotFound:
            return "not found"
        finally:
            connection.close()  # this thread's own connection
        return "deleted"

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(lambda _: delete(), range(2)), key=str)
    assert outcomes == ["deleted", "not found"]
    assert Event.objects.filter(type="message-delete").count() == 1

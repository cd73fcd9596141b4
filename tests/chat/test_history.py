"""Older history: ``GET /rooms/<room>/messages/?before=<id>``, one page of 50 at a time."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chat.models import Message
from chat.selectors import HISTORY_LIMIT, message_payload, room_history_before
from chat.services import message_post

pytestmark = pytest.mark.django_db

BAD_BEFORE = {"error": "must be a message id: a positive integer", "field": "before"}


@pytest.fixture
def lobby() -> list[Message]:
    """120 messages in ``lobby``, oldest first, with one in ``other`` after every third, so
    that the lobby's ids have gaps."""
    messages = []
    for n in range(1, 121):
        messages.append(message_post(room="lobby", author="Ann", text=f"lobby {n}"))
        if n % 3 == 0:
            message_post(room="other", author="Bob", text=f"other {n // 3}")
    return messages


def get(path: str) -> tuple[int, Any]:
    response = Client().get(path)
    return response.status_code, response.json()


def test_messages_before_is_the_50_older_ones_newest_first(lobby: list[Message]) -> None:
    before = lobby[100].pk
    assert get(f"/rooms/lobby/messages/?before={before}") == (
        200,
        # No "last-event-id": an older page is no place to resume the stream from.
        {"messages": [message_payload(m) for m in reversed(lobby[50:100])]},
    )


def test_messages_before_pages_back_to_the_first_message_exactly_once(
    lobby: list[Message],
) -> None:
    pages = []
    status, body = get("/rooms/lobby/messages/")
    while body["messages"]:
        pages.append([m["text"] for m in body["messages"]])
        status, body = get(f"/rooms/lobby/messages/?before={body['messages'][-1]['id']}")
        assert status == 200
    assert body == {"messages": []}
    assert [len(page) for page in pages] == [50, 50, 20]
    assert [text for page in pages for text in page] == [f"lobby {n}" for n in range(120, 0, -1)]


def test_messages_before_a_short_page_holds_the_rest(lobby: list[Message]) -> None:
    assert get(f"/rooms/lobby/messages/?before={lobby[3].pk}") == (
        200,
        {"messages": [message_payload(m) for m in reversed(lobby[:3])]},
    )


def test_messages_before_the_first_message_is_empty(lobby: list[Message]) -> None:
    assert get(f"/rooms/lobby/messages/?before={lobby[0].pk}") == (200, {"messages": []})


def test_messages_before_1_is_empty(lobby: list[Message]) -> None:
    assert get("/rooms/lobby/messages/?before=1") == (200, {"messages": []})


def test_messages_before_an_id_past_the_newest_is_the_newest_50(lobby: list[Message]) -> None:
    newest = [message_payload(m) for m in reversed(lobby[70:])]
    assert get(f"/rooms/lobby/messages/?before={lobby[-1].pk + 1000}") == (
        200,
        {"messages": newest},
    )
    assert get(f"/rooms/lobby/messages/?before={2**63 - 1}") == (200, {"messages": newest})


def test_messages_before_a_deleted_message_is_a_bound_all_the_same(lobby: list[Message]) -> None:
    gone = lobby[60].pk
    lobby[60].delete()
    assert get(f"/rooms/lobby/messages/?before={gone}") == (
        200,
        {"messages": [message_payload(m) for m in reversed(lobby[10:60])]},
    )


def test_messages_before_another_rooms_message_is_a_bound_in_this_room(
    lobby: list[Message],
) -> None:
    # The other room's 10th message was posted right after the lobby's 30th.
    other = Message.objects.filter(room="other").order_by("id")[9]
    assert other.text == "other 10"
    assert get(f"/rooms/lobby/messages/?before={other.pk}") == (
        200,
        {"messages": [message_payload(m) for m in reversed(lobby[:30])]},
    )


def test_messages_before_in_an_empty_room_is_empty(lobby: list[Message]) -> None:
    assert get(f"/rooms/nobody-here/messages/?before={lobby[-1].pk}") == (200, {"messages": []})


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1%0A",
        "007",
        "1.0",
        "1e3",
        "0x10",
        "abc",
        "%D9%A1",  # an Arabic-Indic one, which int() would read as 1
        str(2**63),  # past a bigint: no message has that id
        "99999999999999999999",
    ],
)
def test_messages_before_that_is_not_a_positive_integer_is_400_naming_before(
    lobby: list[Message], value: str
) -> None:
    assert get(f"/rooms/lobby/messages/?before={value}") == (400, BAD_BEFORE)


def test_messages_bad_before_is_checked_after_the_room(lobby: list[Message]) -> None:
    assert get("/rooms/bell%07/messages/?before=x") == (
        400,
        {"error": "must not contain control characters", "field": "room"},
    )


def test_messages_plain_get_is_unchanged(lobby: list[Message]) -> None:
    assert get("/rooms/lobby/messages/") == (
        200,
        {
            "messages": [message_payload(m) for m in reversed(lobby[70:])],
            "last-event-id": f"room-lobby:{lobby[-1].event_id}",
        },
    )
    assert lobby[-1].event_id == 120


def test_messages_post_ignores_before(lobby: list[Message]) -> None:
    response = Client().post("/rooms/lobby/messages/?before=x", {"from": "Ann", "text": "new"})
    assert response.status_code == 200
    assert response.json()["text"] == "new"


def test_room_history_before_reads_the_room_newest_index_without_sorting(
    lobby: list[Message],
) -> None:
    with CaptureQueriesContext(connection) as queries:
        room_history_before(room="lobby", before=lobby[100].pk)
    [query] = queries.captured_queries
    with connection.cursor() as cursor:
        # The table is tiny, so that a scan of it would cost less than the index:
        # ask whether the index can serve the query at all, and how.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {query['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using chat_message_room_newest on chat_message" in plan, plan
    assert "Sort" not in plan, plan
    assert f"Index Cond: (((room)::text = 'lobby'::text) AND (id < {lobby[100].pk}))" in plan, plan
    assert f"LIMIT {HISTORY_LIMIT}" in query["sql"]

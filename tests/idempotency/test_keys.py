"""Idempotency-Key on the API's writes: a retry gets the first answer and stores nothing."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from chat.models import Message
from idempotency.keys import purge_expired
from idempotency.models import IdempotencyKey
from leaderboard import services
from realtime.models import Event
from tests.conftest import Drain
from tests.leaderboard.conftest import players_of, scores

pytestmark = pytest.mark.django_db

MESSAGES = "/rooms/lobby/messages/"


def post(path: str, key: str | None, data: dict[str, str] | None = None, **extra: Any) -> Any:
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return Client().post(path, data or {"from": "Ann", "text": "hi"}, **headers, **extra)


def test_a_repeated_key_gets_the_first_answer_and_stores_nothing(published: Drain) -> None:
    key = str(uuid.uuid4())
    first = post(MESSAGES, key)
    again = post(MESSAGES, key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again["Content-Type"] == first["Content-Type"] == "application/json"
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Message.objects.count() == 1
    assert Event.objects.count() == 1
    assert [payload["text"] for _, _, payload in published()] == ["hi"]


def test_a_quoted_key_is_the_same_key(published: Drain) -> None:
    """The draft writes the key as a Structured Field string: "..."."""
    post(MESSAGES, "abc-1")
    assert post(MESSAGES, '"abc-1"')["Idempotent-Replayed"] == "true"
    assert Message.objects.count() == 1


def test_a_form_sent_again_with_another_multipart_boundary_is_the_same_request(
    published: Drain,
) -> None:
    """Browsers pick a new boundary for each send of the same FormData."""
    for boundary in ("one", "another-boundary"):
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="from"\r\n\r\nAnn\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\nhi\r\n'
            f"--{boundary}--\r\n"
        )
        response = Client().generic(
            "POST",
            MESSAGES,
            body.encode(),
            content_type=f"multipart/form-data; boundary={boundary}",
            HTTP_IDEMPOTENCY_KEY="form-1",
        )
        assert response.status_code == 200, response.content
    assert response["Idempotent-Replayed"] == "true"
    assert Message.objects.count() == 1


def test_without_a_key_each_post_stores_a_message(published: Drain) -> None:
    post(MESSAGES, None)
    post(MESSAGES, None)
    assert Message.objects.count() == 2


@pytest.mark.parametrize(
    ("path", "data", "content_type"),
    [
        (MESSAGES, {"from": "Ann", "text": "something else"}, None),
        ("/rooms/other/messages/", {"from": "Ann", "text": "hi"}, None),
        (MESSAGES, '{"from": "Ann", "text": "hi"}', "application/json"),
    ],
    ids=["other body", "other path", "other content type"],
)
def test_a_key_reused_on_another_request_is_422(
    published: Drain, path: str, data: Any, content_type: str | None
) -> None:
    post(MESSAGES, "k-1")
    extra = {"content_type": content_type} if content_type else {}
    response = post(path, "k-1", data, **extra)
    assert response.status_code == 422
    assert response.json() == {
        "error": "this key was already used with a different request; use a new key",
        "field": "Idempotency-Key",
    }
    assert Message.objects.count() == 1


def test_a_failed_write_keeps_no_key_so_its_fixed_retry_is_stored(published: Drain) -> None:
    refused = post(MESSAGES, "k-2", {"from": "Ann", "text": ""})
    assert refused.status_code == 400
    assert not IdempotencyKey.objects.exists()
    stored = post(MESSAGES, "k-2", {"from": "Ann", "text": "now with text"})
    assert stored.status_code == 200
    assert list(Message.objects.values_list("text", flat=True)) == ["now with text"]


@pytest.mark.parametrize("key", ["", '""', "a b", "é", "x" * 256, 'a"b', "a\\b"])
def test_a_malformed_key_is_400_naming_the_header(published: Drain, key: str) -> None:
    response = post(MESSAGES, key)
    assert response.status_code == 400
    assert response.json() == {
        "error": "must be 1 to 255 visible ASCII characters, such as a UUID",
        "field": "Idempotency-Key",
    }
    assert not Message.objects.exists()


def test_a_repeated_click_adds_one(published: Drain) -> None:
    board = services.board_create(name="Board", players=["Ann"])
    ann = players_of(board)["Ann"]
    path = f"/boards/{board.pk}/players/{ann.pk}/score-add/"
    first = Client().post(path, HTTP_IDEMPOTENCY_KEY="click-1")
    again = Client().post(path, HTTP_IDEMPOTENCY_KEY="click-1")
    other = Client().post(path, HTTP_IDEMPOTENCY_KEY="click-2")
    assert first.json()["score"] == again.json()["score"] == 1
    assert other.json()["score"] == 2
    assert scores(board)["Ann"] == 2


def test_a_key_is_kept_24_hours_then_may_be_used_again(published: Drain) -> None:
    post(MESSAGES, "k-3")
    IdempotencyKey.objects.update(created=timezone.now() - timedelta(hours=23, minutes=59))
    assert post(MESSAGES, "k-3")["Idempotent-Replayed"] == "true"
    IdempotencyKey.objects.update(created=timezone.now() - timedelta(hours=24, minutes=1))
    assert "Idempotent-Replayed" not in post(MESSAGES, "k-3")
    assert Message.objects.count() == 2


def test_purge_deletes_only_expired_keys(published: Drain) -> None:
    for n in range(3):
        post(MESSAGES, f"old-{n}")
    IdempotencyKey.objects.update(created=timezone.now() - timedelta(hours=25))
    post(MESSAGES, "new")
    assert purge_expired() == 3
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_of_one_key_store_once(published: Drain) -> None:
    """Eight copies at once: the first holds the key until it commits; the rest wait, then replay."""
    start = threading.Barrier(8)
    answers: list[Any] = []

    def send() -> None:
        try:
            start.wait()
            answers.append(post(MESSAGES, "same-key"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.content for a in answers}) == 1
    assert sum(a.get("Idempotent-Replayed") == "true" for a in answers) == 7
    assert Message.objects.count() == 1

"""Messages in the Django admin: a delete goes through chat.services.message_delete."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chat.models import Message
from chat.services import message_post
from tests.conftest import Drain

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    return client


def test_admin_delete_of_one_message_publishes_message_delete(
    admin: Client, published: Drain
) -> None:
    gone = message_post(room="lobby", author="Ann", text="rude")
    kept = message_post(room="lobby", author="Bob", text="fine")
    published()
    response = admin.post(f"/admin/chat/message/{gone.pk}/delete/", {"post": "yes"})
    assert (response.status_code, response["Location"]) == (302, "/admin/chat/message/")
    assert list(Message.objects.values_list("pk", flat=True)) == [kept.pk]
    assert published() == [("room-lobby", "message-delete", {"id": gone.pk, "room": "lobby"})]


def test_admin_delete_selected_publishes_one_message_delete_each(
    admin: Client, published: Drain
) -> None:
    lobby = [message_post(room="lobby", author="Ann", text=str(i)) for i in range(2)]
    other = message_post(room="other", author="Bob", text="rude")
    kept = message_post(room="lobby", author="Cat", text="fine")
    published()
    response = admin.post(
        "/admin/chat/message/",
        {
            "action": "delete_selected",
            "_selected_action": [m.pk for m in (other, *lobby)],
            "post": "yes",
        },
    )
    assert (response.status_code, response["Location"]) == (302, "/admin/chat/message/")
    assert list(Message.objects.values_list("pk", flat=True)) == [kept.pk]
    # In lock order: by room, then by id.
    assert published() == [
        ("room-lobby", "message-delete", {"id": lobby[0].pk, "room": "lobby"}),
        ("room-lobby", "message-delete", {"id": lobby[1].pk, "room": "lobby"}),
        ("room-other", "message-delete", {"id": other.pk, "room": "other"}),
    ]

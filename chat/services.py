"""Writes of chat data."""

from __future__ import annotations

from django.db import transaction

from base.errors import NotFound
from base.ids import parse_id
from chat.models import Message
from chat.selectors import message_delete_payload, message_payload
from chat.validation import validate_nickname, validate_room, validate_text
from realtime import log
from realtime.channels import room_channel


def message_post(*, room: str, author: object, text: object) -> Message:
    """Validate and store a message; publish its ``message`` event after commit.

    ``author`` and ``text`` are taken as they came (a form field, a JSON value,
    a command-line argument) and checked here, the one place that does.

    The message and its event (channel ``room-<room>``) are written in one
    transaction: if it rolls back, neither exists and nothing is published.
    Raises :class:`base.errors.InvalidField` naming the first invalid field.
    """
    room = validate_room(room)
    author = validate_nickname(author)
    text = validate_text(text)
    message = Message(room=room, author=author, text=text)
    log.insert_and_send(
        room_channel(room), "message", message, message_payload, event_id_field="event_id"
    )
    return message


def message_delete(*, message_id: int) -> Message:
    """Delete a message for good; publish a ``message-delete`` event after commit.

    The row is deleted and the event (channel ``room-<room>``, data
    ``{"id": <message id>, "room": <room>}``) stored in one transaction: if it
    rolls back, the message is still there and nothing is published. Pages
    remove the message when the event reaches them, live or when they resume
    with ``Last-Event-ID``; the history no longer has it.

    Returns the message as it was. Raises :class:`base.errors.NotFound`
    (field ``message``) when no message has this id, which includes one that
    is already deleted: a second delete, even one racing the first, stores no
    second event.
    """
    message_id = parse_id(message_id, field="message")  # no row has an id out of range
    with transaction.atomic():
        # The row lock makes a concurrent delete of the same message wait, then
        # find nothing; and keeps its room from changing before the event names it.
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            raise NotFound("message")
        channel = room_channel(message.room)
        log.lock_channel(channel)
        Message.objects.filter(pk=message.pk).delete()
        log.send(channel, "message-delete", message_delete_payload(message))
    return message

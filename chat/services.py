"""Writes of chat data."""

from __future__ import annotations

from chat.models import Message
from chat.selectors import message_payload
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

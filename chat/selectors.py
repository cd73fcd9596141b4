"""Reads of chat data, and the one builder of a message's public JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chat.models import Message
from realtime import log
from realtime.channels import room_channel
from realtime.eventstream import resume_id

HISTORY_LIMIT = 50


def message_payload(message: Message) -> dict[str, Any]:
    """The JSON of a message, as the API returns it and as its ``message`` event carries it."""
    return {
        "id": message.pk,
        "from": message.author,
        "date": message.created.isoformat(),
        "text": message.text,
    }


@dataclass(frozen=True)
class RoomHistory:
    messages: list[Message]  # newest first
    last_event_id: str  # resume point for the room's event stream, consistent with messages


def room_history(*, room: str, limit: int = HISTORY_LIMIT) -> RoomHistory:
    """The ``limit`` newest messages of ``room`` and the event id to resume after them.

    The resume point is the newest message's own event id, read in the same
    query as the messages, so that a subscriber that starts from it gets
    exactly the messages committed after this snapshot: none missed, none twice.
    """
    channel = room_channel(room)
    messages = list(Message.objects.filter(room=room).order_by("-id")[:limit])
    if messages and messages[0].event_id is not None:
        last = messages[0].event_id
    else:
        last = log.current_id(channel)
    return RoomHistory(messages=messages, last_event_id=resume_id(channel, last))

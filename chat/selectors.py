"""Reads of chat data, and the one builder of a message's public JSON."""

from __future__ import annotations

from collections.abc import Sequence
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


def message_delete_payload(message: Message) -> dict[str, Any]:
    """The JSON of a ``message-delete`` event: which message is gone, and from which room."""
    return {"id": message.pk, "room": message.room}


@dataclass(frozen=True)
class RoomHistory:
    messages: Sequence[Message]  # newest first
    last_event_id: str  # resume point for the room's event stream, consistent with messages


def room_history(*, room: str, limit: int = HISTORY_LIMIT) -> RoomHistory:
    """The ``limit`` newest messages of ``room`` and the event id to resume after them.

    The resume point is the room channel's latest event id, read in the same
    statement as the messages, so that a subscriber that starts from it gets
    exactly the events committed after this snapshot: no message missed or
    repeated, and no deleted message sent again (it is gone from the history,
    and its ``message`` event, still in the log, lies before the resume point).
    """
    channel = room_channel(room)
    messages = list(
        Message.objects.filter(room=room)
        .annotate(channel_last_id=log.current_id_expression(channel))
        .order_by("-id")[:limit]
    )
    last = messages[0].channel_last_id if messages else log.current_id(channel)
    return RoomHistory(messages=messages, last_event_id=resume_id(channel, last))

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


def _newest(*, room: str, limit: int, before: int | None = None) -> list[Message]:
    """The ``limit`` newest messages of ``room`` (older than ``before``), newest first: one
    backward range scan of the ``chat_message_room_newest`` index."""
    messages = Message.objects.filter(room=room)
    if before is not None:
        messages = messages.filter(id__lt=before)
    return list(messages.order_by("-id")[:limit])


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


def room_history_before(*, room: str, before: int, limit: int = HISTORY_LIMIT) -> list[Message]:
    """The ``limit`` messages of ``room`` just older than message ``before`` (``id < before``),
    newest first: the page a client asks for when it scrolls back.

    ``before`` need not be a message of this room, nor exist: it is only a bound.
    An empty list means there is nothing older. There is no resume point here:
    an older page never moves where a client's stream resumes.
    """
    return _newest(room=room, limit=limit, before=before)

"""The channel names. URL configs and services take them from here, never from clients."""

from __future__ import annotations

import hashlib
import re
from typing import Literal

EventType = Literal["message", "message-delete", "update"]


_PLAIN_ROOM = re.compile(r"^[A-Za-z0-9_.-]+$")


def room_channel(room: str) -> str:
    """The channel that carries a chat room's ``message`` and ``message-delete`` events.

    ``room-<room>`` when the name needs no percent-encoding; otherwise (``café``,
    ``a:b``) ``room~`` and a hash of the name, so that the channel, the GRIP
    channel and the SSE ids built from it (``room~…:12``) need no
    percent-encoding anywhere.
    """
    if _PLAIN_ROOM.match(room):
        return f"room-{room}"
    return f"room~{hashlib.sha256(room.encode()).hexdigest()[:32]}"


BOARD_PREFIX = "board-"


def board_channel(board_id: int) -> str:
    """The channel that carries a leaderboard's ``update`` events."""
    return f"{BOARD_PREFIX}{board_id}"


def board_id_of(channel: str) -> int | None:
    """The board whose channel ``channel`` is, or ``None``."""
    number = channel.removeprefix(BOARD_PREFIX)
    return int(number) if channel.startswith(BOARD_PREFIX) and number.isdigit() else None

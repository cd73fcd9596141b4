"""The channel names. URL configs and services take them from here, never from clients."""

from __future__ import annotations

import hashlib
import re
from typing import Literal
from urllib.parse import quote

EventType = Literal["message", "message-delete", "update"]
# Events that are delivered live and never stored (realtime.ephemeral).
EphemeralType = Literal["typing"]


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


EPHEMERAL_PREFIX = "ephemeral-"


def ephemeral_grip_channel(channel: str) -> str:
    """The GRIP channel carrying ``channel``'s ephemeral events (``typing``) to the proxy's
    streams: one of its own, subscribed with no ``prev-id``, so that these events, which
    have no id, never touch the sequence of the stored events' channel."""
    return EPHEMERAL_PREFIX + quote(channel)

"""The channel names. URL configs and services take them from here, never from clients."""

from __future__ import annotations

from typing import Literal

EventType = Literal["message", "update"]


def room_channel(room: str) -> str:
    """The channel that carries a chat room's ``message`` events."""
    return f"room-{room}"


def board_channel(board_id: int) -> str:
    """The channel that carries a leaderboard's ``update`` events."""
    return f"board-{board_id}"

"""The channel names. URL configs and services take them from here, never from clients."""

from __future__ import annotations

from typing import Literal

EventType = Literal["message", "update"]


def room_channel(room: str) -> str:
    """The channel that carries a chat room's ``message`` events."""
    return f"room-{room}"


BOARD_PREFIX = "board-"


def board_channel(board_id: int) -> str:
    """The channel that carries a leaderboard's ``update`` events."""
    return f"{BOARD_PREFIX}{board_id}"


def board_id_of(channel: str) -> int | None:
    """The board whose channel ``channel`` is, or ``None``."""
    number = channel.removeprefix(BOARD_PREFIX)
    return int(number) if channel.startswith(BOARD_PREFIX) and number.isdigit() else None

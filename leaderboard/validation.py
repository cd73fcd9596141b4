"""Input rules for the leaderboard: ids in URLs, board and player names.

The rules are part of the public API and documented in the README.
"""

from __future__ import annotations

from collections.abc import Sequence

from base.errors import InvalidField, NotFound
from base.ids import parse_row_id
from base.text import validate_display_name

BOARD_PLAYERS_MAX = 100
# Board and player names keep their own limit: the board's columns and layout
# were made for it, and the original leaderboard had no names to accept.
NAME_MAX_LENGTH = 32


def validate_name(value: object, *, field: str = "name") -> str:
    """A display name (no control, bidi or line-separator characters), 1 to
    ``NAME_MAX_LENGTH`` characters after trimming."""
    return validate_display_name(value, field=field, max_length=NAME_MAX_LENGTH)


def parse_id(value: object, *, field: str) -> int:
    """An id from a URL. A malformed one names no row, so it is :class:`NotFound` like an
    unknown one."""
    row_id = parse_row_id(value)
    if row_id is None:
        raise NotFound(field)
    return row_id


def validate_player_names(values: Sequence[object], *, field: str = "players") -> list[str]:
    """1 to ``BOARD_PLAYERS_MAX`` distinct valid names."""
    if not 1 <= len(values) <= BOARD_PLAYERS_MAX:
        raise InvalidField(field, f"must name 1 to {BOARD_PLAYERS_MAX} players")
    names = [validate_name(value, field=field) for value in values]
    if len(set(names)) != len(names):
        raise InvalidField(field, "must not repeat a name")
    return names

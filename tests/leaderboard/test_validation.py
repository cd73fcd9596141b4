from __future__ import annotations

import pytest

from base.errors import InvalidField
from leaderboard.validation import (
    BOARD_PLAYERS_MAX,
    NAME_MAX_LENGTH,
    validate_player_names,
)


def test_validate_player_names_trims_and_keeps_order() -> None:
    assert validate_player_names([" Bob ", "Ann"]) == ["Bob", "Ann"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ([], f"must name 1 to {BOARD_PLAYERS_MAX} players"),
        (
            [f"p{i}" for i in range(BOARD_PLAYERS_MAX + 1)],
            f"must name 1 to {BOARD_PLAYERS_MAX} players",
        ),
        (["Ann", " Ann"], "must not repeat a name"),
        (["Ann", "  "], "must not be blank"),
        (["A" * (NAME_MAX_LENGTH + 1)], f"must be at most {NAME_MAX_LENGTH} characters"),
        (["A\u202eB"], "must not contain control characters"),
    ],
)
def test_validate_player_names_refuses(names: list[str], message: str) -> None:
    with pytest.raises(InvalidField) as error:
        validate_player_names(names)
    assert (error.value.field, error.value.message) == ("players", message)

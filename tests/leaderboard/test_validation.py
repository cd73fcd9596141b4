from __future__ import annotations

import pytest

from base.errors import InvalidField, NotFound
from leaderboard.validation import (
    BOARD_PLAYERS_MAX,
    NAME_MAX_LENGTH,
    parse_id,
    validate_player_names,
)


@pytest.mark.parametrize(
    ("value", "expected"), [("1", 1), ("42", 42), (7, 7), (str(2**63 - 1), 2**63 - 1)]
)
def test_parse_id_accepts_positive_bigints(value: object, expected: int) -> None:
    assert parse_id(value, field="board") == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0",
        "-1",
        "01",
        "1.5",
        "1e3",
        "abc",
        " 1",
        "1 ",
        "1\n",  # "$" matches before a final newline; int() ignores it
        "\u0661",  # ARABIC-INDIC DIGIT ONE: a digit to str.isdigit, not to the API
        str(2**63),
        "9" * 30,
        None,
        True,
        1.0,
    ],
)
def test_parse_id_malformed_is_not_found(value: object) -> None:
    with pytest.raises(NotFound) as error:
        parse_id(value, field="player")
    assert (error.value.field, error.value.message) == ("player", "no such player")


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

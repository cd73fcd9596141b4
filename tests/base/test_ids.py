from __future__ import annotations

import pytest

from base.errors import NotFound
from base.ids import parse_id


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

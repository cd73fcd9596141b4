from __future__ import annotations

import pytest

from chat.validation import (
    NICKNAME_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    validate_nickname,
    validate_room,
    validate_text,
)
from chatdemo.http import FieldError


@pytest.mark.parametrize("room", ["default", "a", "A-b_9", "x" * 64])
def test_validate_room_accepts_pattern(room: str) -> None:
    assert validate_room(room) == room


@pytest.mark.parametrize("room", ["", "x" * 65, "has space", "dot.ted", "slash/", "ü", None, 5])
def test_validate_room_rejects_outside_pattern(room: object) -> None:
    with pytest.raises(FieldError) as error:
        validate_room(room)
    assert error.value.field == "room"


def test_validate_nickname_strips_surrounding_space() -> None:
    assert validate_nickname("  Ann  ") == "Ann"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "is required"),
        ("", "must not be blank"),
        ("   \t", "must not be blank"),
        ("x" * (NICKNAME_MAX_LENGTH + 1), f"must be at most {NICKNAME_MAX_LENGTH} characters"),
        ("bad\x00name", "must not contain control characters"),
        ("bad\nname", "must not contain control characters"),
        ("bad\x1bname", "must not contain control characters"),
        ("evil\u202ename", "must not contain control characters"),
        (["list"], "must be a string"),
    ],
)
def test_validate_nickname_rejects(value: object, message: str) -> None:
    with pytest.raises(FieldError) as error:
        validate_nickname(value)
    assert (error.value.field, error.value.message) == ("from", message)


def test_validate_nickname_accepts_unicode_and_max_length() -> None:
    assert validate_nickname("Zoë 👩‍💻") == "Zoë 👩‍💻"
    assert validate_nickname("n" * NICKNAME_MAX_LENGTH) == "n" * NICKNAME_MAX_LENGTH


def test_validate_text_keeps_newlines_and_normalizes_crlf() -> None:
    assert validate_text("one\r\ntwo\rthree\tfour") == "one\ntwo\nthree\tfour"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "is required"),
        ("", "must not be blank"),
        (" \n ", "must not be blank"),
        ("x" * (TEXT_MAX_LENGTH + 1), f"must be at most {TEXT_MAX_LENGTH} characters"),
        ("nul\x00byte", "must not contain control characters other than newline and tab"),
    ],
)
def test_validate_text_rejects(value: object, message: str) -> None:
    with pytest.raises(FieldError) as error:
        validate_text(value)
    assert (error.value.field, error.value.message) == ("text", message)


def test_validate_text_accepts_max_length() -> None:
    assert validate_text("y" * TEXT_MAX_LENGTH) == "y" * TEXT_MAX_LENGTH

from __future__ import annotations

from typing import Any

import pytest

from base.errors import InvalidField
from chat.validation import (
    NICKNAME_MAX_LENGTH,
    ROOM_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    validate_nickname,
    validate_room,
    validate_text,
)


@pytest.mark.parametrize(
    "room",
    [
        "default",
        "a",
        "A-b_9",
        "team.chat",
        "café",
        "with space",
        "a:b",
        "a,b",
        "100%",
        "部屋 💬",
        "x" * ROOM_MAX_LENGTH,
    ],
)
def test_validate_room_accepts_printable_names(room: str) -> None:
    assert validate_room(room) == room


def test_validate_room_normalizes_to_nfc() -> None:
    assert validate_room("cafe\u0301") == "café"


@pytest.mark.parametrize(
    ("room", "message"),
    [
        ("", "must not be blank"),
        ("   ", "must not be blank"),
        ("x" * (ROOM_MAX_LENGTH + 1), f"must be at most {ROOM_MAX_LENGTH} characters"),
        (" lead", "must not start or end with a space"),
        ("trail ", "must not start or end with a space"),
        ("a/b", 'must not contain "/"'),
        (".", 'must not be "." or ".."'),
        ("..", 'must not be "." or ".."'),
        ("tab\there", "must not contain control characters"),
        ("nul\x00", "must not contain control characters"),
        ("evil\u202eroom", "must not contain control characters"),
        ("line\u2028break", "must not contain control characters"),
        (None, "must be a string"),
        (5, "must be a string"),
    ],
)
def test_validate_room_rejects(room: object, message: str) -> None:
    with pytest.raises(InvalidField) as error:
        validate_room(room)
    assert (error.value.field, error.value.message) == ("room", message)


def test_limits_are_at_least_the_original_demos() -> None:
    """The original accepted 40-character nicknames and messages of any length."""
    assert NICKNAME_MAX_LENGTH >= 40
    assert TEXT_MAX_LENGTH > 2000
    assert ROOM_MAX_LENGTH > 64


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
    with pytest.raises(InvalidField) as error:
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
    with pytest.raises(InvalidField) as error:
        validate_text(value)
    assert (error.value.field, error.value.message) == ("text", message)


def test_validate_text_accepts_max_length() -> None:
    assert validate_text("y" * TEXT_MAX_LENGTH) == "y" * TEXT_MAX_LENGTH


# --- CHAT_BLOCKED_WORDS -----------------------------------------------------------------

BLOCKED = ["darn", "heck", "good grief", "straße"]


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("darn", "darn"),
        ("Oh DARN it", "darn"),  # any case
        ("darn!", "darn"),  # punctuation ends a word
        ("(heck)", "heck"),
        ("well,heck.", "heck"),
        ("first line\nDarn", "darn"),
        ("good grief, again", "good grief"),  # a phrase
        ("Good Grief!", "good grief"),
        ("STRASSE", "strasse"),  # case-folded: ß is ss
        ("\uff24\uff41\uff52\uff4e", "darn"),  # fullwidth letters are letters
    ],
)
def test_validate_text_refuses_blocked_words(settings: Any, text: str, word: str) -> None:
    settings.CHAT_BLOCKED_WORDS = BLOCKED
    with pytest.raises(InvalidField) as error:
        validate_text(text)
    assert (error.value.field, error.value.message) == (
        "text",
        f'must not contain the blocked word "{word}"',
    )


@pytest.mark.parametrize(
    "text",
    [
        "darned",  # a longer word
        "undarn",
        "darn_it",  # "_" is a word character
        "darn2",
        "checked",
        "good",  # half a phrase
        "goodgrief",
        "café",
    ],
)
def test_validate_text_accepts_words_that_only_contain_a_blocked_one(
    settings: Any, text: str
) -> None:
    settings.CHAT_BLOCKED_WORDS = BLOCKED
    assert validate_text(text) == text


def test_validate_text_blocks_nothing_when_the_setting_is_empty(settings: Any) -> None:
    settings.CHAT_BLOCKED_WORDS = []
    assert validate_text("darn heck") == "darn heck"


def test_validate_text_follows_a_changed_setting(settings: Any) -> None:
    settings.CHAT_BLOCKED_WORDS = ["darn"]
    with pytest.raises(InvalidField):
        validate_text("heck and darn")
    settings.CHAT_BLOCKED_WORDS = ["heck"]
    with pytest.raises(InvalidField) as error:
        validate_text("heck and darn")
    assert error.value.message == 'must not contain the blocked word "heck"'

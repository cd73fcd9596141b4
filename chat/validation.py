"""Input rules for chat: what a room id, a nickname and a message may be.

The limits are part of the public API and documented in the README.
"""

from __future__ import annotations

import re
import unicodedata

from chatdemo.http import FieldError

ROOM_PATTERN = r"[A-Za-z0-9_-]{1,64}"
ROOM_MAX_LENGTH = 64
NICKNAME_MAX_LENGTH = 32
TEXT_MAX_LENGTH = 2000
DEFAULT_ROOM = "default"

_ROOM = re.compile(rf"^{ROOM_PATTERN}$")
# Characters that can reorder or hide the text around them.
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_LINE_BREAKS = {"\u2028", "\u2029"}


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in {"Cc", "Cs"} or char in _BIDI_CONTROLS | _LINE_BREAKS


def validate_room(room: object, *, field: str = "room") -> str:
    if not isinstance(room, str) or not _ROOM.match(room):
        raise FieldError(field, f"must match {ROOM_PATTERN}")
    return room


def _required_string(value: object, field: str) -> str:
    if value is None:
        raise FieldError(field, "is required")
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    stripped = value.strip()
    if not stripped:
        raise FieldError(field, "must not be blank")
    return stripped


def validate_nickname(value: object, *, field: str = "from") -> str:
    nickname = _required_string(value, field)
    if len(nickname) > NICKNAME_MAX_LENGTH:
        raise FieldError(field, f"must be at most {NICKNAME_MAX_LENGTH} characters")
    if any(_is_control(c) for c in nickname):
        raise FieldError(field, "must not contain control characters")
    return nickname


def validate_text(value: object, *, field: str = "text") -> str:
    text = _required_string(value, field).replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > TEXT_MAX_LENGTH:
        raise FieldError(field, f"must be at most {TEXT_MAX_LENGTH} characters")
    if any(_is_control(c) and c not in "\n\t" for c in text):
        raise FieldError(field, "must not contain control characters other than newline and tab")
    return text

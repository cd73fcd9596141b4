"""Input rules for chat: what a room name, a nickname and a message may be.

The limits are part of the public API and documented in the README. They are
at least what the original Fanout chat demo accepted (any room name its URLs
could carry, 40-character nicknames from its join page, messages of any
length), bounded so that one request stays small: the longest message, in
4-byte characters and percent-encoded, still fits the 64 KiB body limit.
"""

from __future__ import annotations

import unicodedata

from chatdemo.http import FieldError

ROOM_MAX_LENGTH = 100
NICKNAME_MAX_LENGTH = 64
TEXT_MAX_LENGTH = 5000
DEFAULT_ROOM = "default"

# Characters that can reorder or hide the text around them.
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_LINE_BREAKS = {"\u2028", "\u2029"}


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in {"Cc", "Cs"} or char in _BIDI_CONTROLS | _LINE_BREAKS


def validate_room(room: object, *, field: str = "room") -> str:
    """A room name: 1 to ``ROOM_MAX_LENGTH`` printable characters, any script, no ``/``.

    Normalized to NFC, so that ``café`` typed on any keyboard is one room.
    No ``/``, because a room is one URL path segment. Surrounding spaces are
    refused rather than trimmed: the name in the URL is the room's name.
    """
    if not isinstance(room, str):
        raise FieldError(field, "must be a string")
    room = unicodedata.normalize("NFC", room)
    if not room.strip():
        raise FieldError(field, "must not be blank")
    if len(room) > ROOM_MAX_LENGTH:
        raise FieldError(field, f"must be at most {ROOM_MAX_LENGTH} characters")
    if room != room.strip():
        raise FieldError(field, "must not start or end with a space")
    if "/" in room:
        raise FieldError(field, 'must not contain "/"')
    if room in {".", ".."}:
        # Browsers resolve them in URLs: /rooms/../messages/ is /messages/.
        raise FieldError(field, 'must not be "." or ".."')
    if any(_is_control(c) for c in room):
        raise FieldError(field, "must not contain control characters")
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


def validate_nickname(
    value: object, *, field: str = "from", max_length: int = NICKNAME_MAX_LENGTH
) -> str:
    nickname = _required_string(value, field)
    if len(nickname) > max_length:
        raise FieldError(field, f"must be at most {max_length} characters")
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

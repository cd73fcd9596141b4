"""Input rules for chat: what a room name, a nickname and a message may be.

The limits are part of the public API and documented in the README. They are
at least what the original Fanout chat demo accepted (any room name its URLs
could carry, 40-character nicknames from its join page, messages of any
length), bounded so that one request stays small: the longest message, in
4-byte characters and percent-encoded, still fits the 64 KiB body limit.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from django.conf import settings

from base.errors import InvalidField
from base.ids import parse_row_id
from base.text import is_control, required_string, validate_display_name

ROOM_MAX_LENGTH = 100
NICKNAME_MAX_LENGTH = 64
TEXT_MAX_LENGTH = 5000
DEFAULT_ROOM = "default"


def validate_room(room: object, *, field: str = "room") -> str:
    """A room name: 1 to ``ROOM_MAX_LENGTH`` printable characters, any script, no ``/``.

    Normalized to NFC, so that ``café`` typed on any keyboard is one room.
    No ``/``, because a room is one URL path segment. Surrounding spaces are
    refused rather than trimmed: the name in the URL is the room's name.
    """
    if not isinstance(room, str):
        raise InvalidField(field, "must be a string")
    room = unicodedata.normalize("NFC", room)
    if not room.strip():
        raise InvalidField(field, "must not be blank")
    if len(room) > ROOM_MAX_LENGTH:
        raise InvalidField(field, f"must be at most {ROOM_MAX_LENGTH} characters")
    if room != room.strip():
        raise InvalidField(field, "must not start or end with a space")
    if "/" in room:
        raise InvalidField(field, 'must not contain "/"')
    if room in {".", ".."}:
        # Browsers resolve them in URLs: /rooms/../messages/ is /messages/.
        raise InvalidField(field, 'must not be "." or ".."')
    if any(is_control(c) for c in room):
        raise InvalidField(field, "must not contain control characters")
    return room


def validate_nickname(value: object, *, field: str = "from") -> str:
    return validate_display_name(value, field=field, max_length=NICKNAME_MAX_LENGTH)


def validate_text(value: object, *, field: str = "text") -> str:
    """A message: 1 to ``TEXT_MAX_LENGTH`` characters after trimming, no control
    characters but newline and tab, and none of the words in ``CHAT_BLOCKED_WORDS``."""
    text = required_string(value, field).replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > TEXT_MAX_LENGTH:
        raise InvalidField(field, f"must be at most {TEXT_MAX_LENGTH} characters")
    if any(is_control(c) and c not in "\n\t" for c in text):
        raise InvalidField(field, "must not contain control characters other than newline and tab")
    blocked = _blocked_words(tuple(settings.CHAT_BLOCKED_WORDS))
    found = blocked.search(_comparable(text)) if blocked else None
    if found:
        raise InvalidField(field, f'must not contain the blocked word "{found.group()}"')
    return text


def _comparable(text: str) -> str:
    """``text`` as words are compared: compatibility-normalized (fullwidth letters are
    plain letters), then case-folded (``BAD`` is ``bad``, ``ß`` is ``ss``)."""
    return unicodedata.normalize("NFKC", text).casefold()


@functools.cache
def _blocked_words(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern matching any of ``words`` as a whole word (or phrase): not inside a
    longer word, so ``class`` is not refused for ``ass``. ``None`` when there are none."""
    if not words:
        return None
    alternatives = "|".join(re.escape(_comparable(w)) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def validate_message_id(value: object, *, field: str) -> int:
    """A message id from a query string (``?before=``): a positive integer in ASCII digits."""
    message_id = parse_row_id(value)
    if message_id is None:
        raise InvalidField(field, "must be a message id: a positive integer")
    return message_id

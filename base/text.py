"""The rule for a name that people type and others see: a nickname, a board or player name."""

from __future__ import annotations

import unicodedata

from base.errors import InvalidField

# Characters that can reorder or hide the text around them.
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_LINE_BREAKS = {"\u2028", "\u2029"}


def is_control(char: str) -> bool:
    """A control, surrogate, bidi-override or line-separator character."""
    return unicodedata.category(char) in {"Cc", "Cs"} or char in _BIDI_CONTROLS | _LINE_BREAKS


def required_string(value: object, field: str) -> str:
    """``value`` as a non-blank string, trimmed."""
    if value is None:
        raise InvalidField(field, "is required")
    if not isinstance(value, str):
        raise InvalidField(field, "must be a string")
    stripped = value.strip()
    if not stripped:
        raise InvalidField(field, "must not be blank")
    return stripped


def validate_display_name(value: object, *, field: str, max_length: int) -> str:
    """1 to ``max_length`` characters after trimming, none of them a control character."""
    name = required_string(value, field)
    if len(name) > max_length:
        raise InvalidField(field, f"must be at most {max_length} characters")
    if any(is_control(c) for c in name):
        raise InvalidField(field, "must not contain control characters")
    return name

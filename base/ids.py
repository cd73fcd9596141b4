"""Row ids as clients and operators type them: in URLs, query strings, on the command line."""

from __future__ import annotations

import re

from base.errors import NotFound

# Ids are PostgreSQL bigints; anything else cannot name a row. Matched whole
# (fullmatch): "$" would also match before a final newline, and int() would
# read "1\n" as 1, " 1" as 1 and an Arabic-Indic digit one as 1.
_ID = re.compile(r"[1-9][0-9]{0,18}")
ID_MAX = 2**63 - 1


def parse_row_id(value: object) -> int | None:
    """``value`` as a row id (a positive bigint, written in ASCII digits), or None if it is not one."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _ID.fullmatch(value) or int(value) > ID_MAX:
        return None
    return int(value)


def parse_id(value: object, *, field: str) -> int:
    """An id from a URL. A malformed one names no row, so it is :class:`NotFound` like an
    unknown one."""
    number = parse_row_id(value)
    if number is None:
        raise NotFound(field)
    return number

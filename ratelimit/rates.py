"""A limit's value: ``N/<period>`` (``30/2s``, ``10/10s``, ``100/1m``) or ``off``.

``N/<period>`` is a token bucket of ``N`` requests that refills evenly over the
period: a client may make ``N`` requests at once, then one every ``period / N``
seconds. The settings read it from the environment with :func:`env_rate`, at
start-up, so that a bad value stops the process with the variable's name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

_RATE = re.compile(r"^(\d+)\s*/\s*(\d*)\s*(s|m|h)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Rate:
    """``burst`` requests at once, refilled at ``per_second`` requests a second."""

    burst: int
    per_second: float

    def __str__(self) -> str:
        return f"{self.burst}/{self.burst / self.per_second:g}s"


def parse_rate(value: str) -> Rate | None:
    """``N/<period>`` as a :class:`Rate`, ``off`` as ``None``; ValueError for anything else."""
    text = value.strip().lower()
    if text == "off":
        return None
    match = _RATE.match(text)
    if match is None:
        raise ValueError("not N/<period>")
    burst, count, unit = int(match[1]), int(match[2] or 1), match[3]
    seconds = count * _SECONDS[unit]
    if burst < 1 or seconds < 1:
        raise ValueError("N and the period must be at least 1")
    return Rate(burst=burst, per_second=burst / seconds)


def env_rate(name: str, default: str, environ: Mapping[str, str] = os.environ) -> Rate | None:
    """The limit in the variable ``name`` (``default`` when unset or blank)."""
    value = environ.get(name, "").strip() or default
    try:
        return parse_rate(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be 'off' or N/<period>, such as 10/10s (N requests at once, "
            f"refilled over the period; the period in s, m or h); got {value!r}"
        ) from None

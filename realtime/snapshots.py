"""Whole-state channels (a board's standings): how the publisher snapshots each one.

An app whose channel carries its whole state in every event registers, in its
``AppConfig.ready()``, the function that stores that channel's current state
as an event when it changed. A write to such a channel then stores no event:
it only notifies (:func:`realtime.log.state_changed`), and the publisher takes
at most one snapshot per channel per ``REALTIME_SNAPSHOT_INTERVAL_MS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

Snapshot = Callable[[str], object]
Lister = Callable[[], Iterable[str]]

_by_prefix: dict[str, Snapshot] = {}
_listers: dict[str, Lister] = {}


def register(prefix: str, take: Snapshot, *, every: Lister) -> None:
    """Snapshot every channel named ``prefix...`` with ``take(channel)``.

    ``every()`` names all such channels, those with no event yet included: the
    publisher's sweep snapshots each, so that each has a latest event to replay.
    """
    known = _by_prefix.get(prefix)
    if known is not None and known is not take:
        raise ValueError(f"channels {prefix!r}... already have a snapshot: {known!r}")
    _by_prefix[prefix] = take
    _listers[prefix] = every


def every_channel() -> set[str]:
    """Every whole-state channel, as the apps list them."""
    return {name for lister in _listers.values() for name in lister()}


def for_channel(name: str) -> Snapshot | None:
    """The snapshot of channel ``name``, or ``None`` when its events add up (a chat room)."""
    for prefix, take in _by_prefix.items():
        if name.startswith(prefix):
            return take
    return None

"""Direct mode (no proxy): each app process wakes its own streams from the log.

django-eventstream's direct streams wait for a wake-up, then read what they
missed from the storage class. Here a thread per app process, started with
the first direct stream, tells them when their channel has new events: a
:class:`realtime.notify.Follower` that, on PostgreSQL, hears the notifications
that writes send on commit and, elsewhere (SQLite), polls the channels' last
ids. A woken stream reads every event after its own last id from the log: in
order, each once, whichever process wrote it.

How a stream is woken is django-eventstream's business
(:func:`realtime.eventstream.wake`).
"""

from __future__ import annotations

import threading

import psycopg
from django.conf import settings
from django.db import connections

from realtime import eventstream, notify
from realtime.models import Channel

_started = False
_start_lock = threading.Lock()


def ensure_waker() -> None:
    """Start this process's waker thread, once."""
    global _started
    with _start_lock:
        if _started:
            return
        _started = True
    waker = Waker(name="direct waker", poll_seconds=settings.REALTIME_POLL_MS / 1000)
    # Never stopped: it lives as long as the process.
    threading.Thread(
        target=waker.run, args=(threading.Event(),), name="realtime-direct-waker", daemon=True
    ).start()


class Waker(notify.Follower):
    """Wakes this process's direct streams of the channels that have new events."""

    def __init__(self, *, name: str, poll_seconds: float) -> None:
        super().__init__(name=name, poll_seconds=poll_seconds)
        self._seen: dict[str, int] = {}

    def started(self, listener: psycopg.Connection | None, stop: threading.Event) -> None:
        # Whatever was written while this process was not listening.
        eventstream.wake(eventstream.watched())

    def changed(self, commits: notify.Commits | None) -> None:
        if commits is not None:
            if commits.events:
                eventstream.wake(commits.events)
            return
        # Polling: the watched channels whose last id moved.
        watched = eventstream.watched()
        current = dict(Channel.objects.filter(name__in=watched).values_list("name", "last_id"))
        connections.close_all()
        moved = {name for name, last in current.items() if self._seen.get(name) != last}
        self._seen = current
        if moved:
            eventstream.wake(moved)

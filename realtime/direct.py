"""Direct mode (no proxy): each app process wakes its own streams from the log.

django-eventstream's direct streams wait for a wake-up, then read what they
missed from the storage class. Here a thread per app process, started with
the first direct stream, tells them when their channel has new events: on
PostgreSQL it ``LISTEN``s for the notifications that writes send on commit,
elsewhere (SQLite) it polls the channels' last ids. A woken stream reads every
event after its own last id from the log: in order, each once, whichever
process wrote it.

This marks django-eventstream's listeners for a re-read (``overflow``), the
path it takes itself when a listener's queue is full; that is not a
documented interface, so pyproject.toml pins django-eventstream below 5.4 and
tests/realtime/test_direct.py fails if it changes.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, connections
from django_eventstream import views as eventstream_views

from realtime import notify
from realtime.models import Channel

logger = logging.getLogger("realtime.direct")

_started = False
_start_lock = threading.Lock()


def ensure_waker() -> None:
    """Start this process's waker thread, once."""
    global _started
    with _start_lock:
        if _started:
            return
        _started = True
    threading.Thread(target=_run, name="realtime-direct-waker", daemon=True).start()


def wake(names: set[str]) -> None:
    """Make this process's direct streams of ``names`` read what they miss from the log."""
    manager = eventstream_views.get_listener_manager()
    with manager.lock:
        listeners = {
            listener for name in names for listener in manager.listeners_by_channel.get(name, ())
        }
        for listener in listeners:
            listener.overflow = True
    for listener in listeners:
        listener.wake_threadsafe()


def _watched() -> set[str]:
    manager = eventstream_views.get_listener_manager()
    with manager.lock:
        return set(manager.listeners_by_channel)


def _run() -> None:
    """The waker: as long as the process lives, through database restarts."""
    poll = settings.REALTIME_POLL_MS / 1000
    while True:
        try:
            if connection.vendor == "postgresql":
                _listen(poll)
            else:
                _poll(poll)
        except (DatabaseError, psycopg.Error) as error:
            logger.warning("direct waker error=%r", error)
            connections.close_all()
            time.sleep(1.0)


def _listen(poll: float) -> None:
    with notify.listening() as listener:
        # Whatever was written while this connection was down.
        wake(_watched())
        while True:
            names = notify.wait(listener, poll)
            if names:
                wake(names)


def _poll(poll: float) -> None:
    seen: dict[str, int] = {}
    while True:
        watched = _watched()
        current = dict(Channel.objects.filter(name__in=watched).values_list("name", "last_id"))
        connections.close_all()
        changed = {name for name, last in current.items() if seen.get(name) != last}
        seen = current
        if changed:
            wake(changed)
        time.sleep(poll)

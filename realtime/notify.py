"""PostgreSQL LISTEN/NOTIFY: how the processes that read the log learn of new events.

A write sends ``NOTIFY`` with its channel's name in its own transaction, so
PostgreSQL delivers it only if, and when, that transaction commits. The
publisher and each direct-mode app process listen. Nothing depends on a
notification arriving: listeners also catch up on their own after a start or
a lost connection, and on other databases they poll.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection

NOTIFY_CHANNEL = "realtime_events"


def notify(channel: str) -> None:
    """Tell the listeners that ``channel`` has a new event, once the current transaction commits."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, channel])


@contextmanager
def listening() -> Iterator[psycopg.Connection]:
    """A connection of its own (not Django's, which may be pooled) that listens."""
    params = connection.get_connection_params()
    # Django's own cursor class and adapters are for its connections, not this one.
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        yield listener


def wait(listener: psycopg.Connection, timeout: float) -> set[str]:
    """The channels named by the notifications that come within ``timeout`` seconds.

    Returns as soon as one arrives, with whatever else is already queued.
    """
    names = {n.payload for n in listener.notifies(timeout=timeout, stop_after=1)}
    if names:
        names |= {n.payload for n in listener.notifies(timeout=0.001)}
    return names

"""PostgreSQL LISTEN/NOTIFY: how the processes that read the log learn of commits.

A write sends ``NOTIFY`` in its own transaction, so PostgreSQL delivers it
only if, and when, that transaction commits. A notification says one of two
things about a channel:

- an event was stored on it (:func:`notify`): the publisher publishes it, and
  direct-mode streams read it;
- the state behind a whole-state channel changed without an event
  (:func:`notify_state`, a click on a board): the publisher snapshots it.

So the publisher, which stores snapshots as events, never mistakes its own
snapshot for a change that needs another one.

:class:`Follower` is the one loop that every reader of the log runs (the
publisher, and each direct-mode app process): it listens on PostgreSQL, polls
elsewhere, and keeps going through database restarts. Nothing depends on a
notification arriving: followers also look at everything after each
(re)connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, connections

logger = logging.getLogger("realtime.notify")

NOTIFY_CHANNEL = "realtime_events"
# The payload of a state notification: this prefix, then the channel. No channel
# name starts with it (realtime.channels).
_STATE = "state:"
# A listener's notification to itself, to check that its connection is a session.
_CHECK = "check:"
# How long a new listener waits to hear its own check.
CHECK_SECONDS = 5.0


def notify(channel: str) -> None:
    """Tell the listeners that ``channel`` has a new event, once the current transaction commits."""
    _send(channel)


def notify_state(channel: str) -> None:
    """Tell the publisher that ``channel``'s state changed (it snapshots it), on commit."""
    _send(_STATE + channel)


def _send(payload: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, payload])


@dataclass
class Commits:
    """What the notifications of one wait said: channels with new events, channels whose
    state changed."""

    events: set[str] = field(default_factory=set)
    states: set[str] = field(default_factory=set)

    def add(self, payload: str) -> None:
        if payload.startswith(_CHECK):
            return
        if payload.startswith(_STATE):
            self.states.add(payload.removeprefix(_STATE))
        else:
            self.events.add(payload)


@contextmanager
def listening() -> Iterator[psycopg.Connection]:
    """A connection of its own (not Django's, which may be pooled) that listens.

    It goes to ``DATABASE_LISTEN_URL`` when that is set, else where Django's
    does. It must be a session of its own: ``LISTEN`` (and the publisher's
    advisory lock) belong to the session, so behind a pooler in transaction
    mode the listener would hear nothing. It checks that it hears its own
    notification, and raises ``ImproperlyConfigured`` if it does not.
    """
    with _connect() as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        _check_session(listener)
        yield listener


def _connect() -> psycopg.Connection:
    """A new autocommit connection to where listeners go."""
    if settings.DATABASE_LISTEN_URL:
        return psycopg.connect(settings.DATABASE_LISTEN_URL, autocommit=True)
    params = connection.get_connection_params()
    # Django's own cursor class and adapters are for its connections, not this one.
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def _check_session(listener: psycopg.Connection) -> None:
    """Hear a notification sent from another connection, or refuse one that cannot listen.

    Sent from another connection, as writers send theirs: behind a transaction
    pooler, a notification to the listener's own connection could come back
    on that very query, and prove nothing. Notifications of others heard
    meanwhile are dropped: a listener looks at everything after it connects
    anyway (:class:`Follower`).
    """
    token = f"{_CHECK}{id(listener)}"
    with _connect() as sender:
        sender.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, token])
    for note in listener.notifies(timeout=CHECK_SECONDS):
        if note.payload == token:
            return
    raise ImproperlyConfigured(
        "LISTEN heard nothing on this connection: it is not a session of its own "
        "(a pooler in transaction mode?). Point DATABASE_LISTEN_URL straight at PostgreSQL, "
        "or at a pooler in session mode (docs/SCALING.md, Connection poolers)."
    )


def wait(listener: psycopg.Connection, timeout: float) -> Commits:
    """What the notifications that come within ``timeout`` seconds say.

    Returns as soon as one arrives, with whatever else is already queued.
    """
    commits = Commits()
    for note in listener.notifies(timeout=timeout, stop_after=1):
        commits.add(note.payload)
    if commits.events or commits.states:
        # Only what has already arrived: psycopg spins through a short timeout (a 1 ms
        # one cost the publisher 0.9 ms of CPU per wake, most of its cost per click).
        for note in listener.notifies(timeout=0):
            commits.add(note.payload)
    return commits


class Follower:
    """A loop over the log's commits, for as long as ``stop`` is not set.

    On PostgreSQL it listens: :meth:`started` runs after each (re)connection,
    then :meth:`changed` after each wait, with what the notifications said.
    Elsewhere (SQLite) it polls: :meth:`started` runs once with no listener,
    then :meth:`changed` gets ``None`` (look at everything) every ``poll_seconds``. A database error (or one of
    :attr:`errors`) closes the connections and starts over after a backoff.
    """

    errors: tuple[type[Exception], ...] = (DatabaseError, psycopg.Error)

    def __init__(self, *, name: str, poll_seconds: float) -> None:
        self.name = name
        self.poll_seconds = poll_seconds
        self._failures = 0

    def started(self, listener: psycopg.Connection | None, stop: threading.Event) -> None:
        """After each (re)connection (``listener`` is ``None`` when polling), before the
        first wait: by default, look at everything."""
        self.changed(None)

    def changed(self, commits: Commits | None) -> None:
        """React to ``commits`` (``None``: no notifications to go by; look at everything)."""
        raise NotImplementedError

    def wait_seconds(self) -> float:
        """How long the next wait for notifications may last."""
        return self.poll_seconds

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if connection.vendor == "postgresql":
                    self._listen(stop)
                else:
                    self._poll(stop)
            except self.errors as error:
                self._failures += 1
                delay = min(0.1 * 2**self._failures, 5.0)
                logger.warning("%s error=%r retry_in=%.1fs", self.name, error, delay)
                connections.close_all()
                stop.wait(delay)

    def _listen(self, stop: threading.Event) -> None:
        with listening() as listener:
            self.started(listener, stop)
            self._failures = 0
            while not stop.is_set():
                self.changed(wait(listener, self.wait_seconds()))
                self._failures = 0

    def _poll(self, stop: threading.Event) -> None:
        self.started(None, stop)
        while not stop.is_set():
            self.changed(None)
            self._failures = 0
            stop.wait(self.poll_seconds)

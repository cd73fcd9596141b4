"""The publisher: the one process that hands committed events to the GRIP proxy.

``python manage.py realtime_publish`` runs :meth:`Publisher.run`. Web
processes only write events to the log (:mod:`realtime.log`); the publisher
reads them back and publishes each channel's events in id order, with ``id``
and ``prev-id``, in batches. How far it got is stored per channel
(``Channel.published_id``), so a publisher killed at any moment publishes
what is left when it comes back; an event it publishes twice is harmless,
because the proxy delivers an id only after its ``prev-id``.

It is woken by PostgreSQL ``LISTEN/NOTIFY``: a write sends ``NOTIFY`` in its
own transaction (:func:`realtime.log.notify`), which PostgreSQL delivers only
on commit. On SQLite, and while its connection is down, it polls.

Exactly one publisher publishes at a time: it holds a PostgreSQL advisory
lock for as long as it runs, and a second one waits as a standby until the
lock is free.

Whole-state channels (a board's standings) are snapshotted here too:
``REALTIME_SNAPSHOTS`` maps a channel prefix to a function that stores the
channel's current state as an event if it changed. A write to such a channel
only notifies; the publisher takes at most one snapshot per channel per
``REALTIME_SNAPSHOT_INTERVAL_MS``, so any number of clicks in between share
one update, and the last one always follows the last click.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from realtime import log, notify
from realtime.models import Channel, Event
from realtime.proxy import PublishError

logger = logging.getLogger("realtime.publisher")

# Any 64-bit number that nothing else in the database uses as an advisory lock.
LOCK_KEY = 0x7265616C74696D65  # "realtime"


class Transport(Protocol):
    def publish(self, events: Sequence[Event]) -> None:
        """Publish ``events`` (in this order) or raise :class:`PublishError`."""


class Publisher:
    """Publishes the log's committed events through ``transport``; see the module."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.batch_size: int = settings.REALTIME_PUBLISH_BATCH
        self.poll_seconds: float = settings.REALTIME_POLL_MS / 1000
        self.snapshot_every: float = settings.REALTIME_SNAPSHOT_INTERVAL_MS / 1000
        self.snapshots: dict[str, Callable[[str], object]] = {
            prefix: import_string(path) for prefix, path in settings.REALTIME_SNAPSHOTS.items()
        }
        self._stale: dict[str, float] = {}  # channel -> when its snapshot is due (monotonic)
        self._last_snapshot: dict[str, float] = {}
        self._failures = 0

    # --- one pass ---------------------------------------------------------------------

    def publish_pending(self, names: Iterable[str] | None = None) -> int:
        """Publish every committed, unpublished event (of ``names`` only, if given).

        Returns how many were published. Raises :class:`PublishError` when the
        proxy refuses a batch; what was published before it stays published.
        """
        pending = Channel.objects.filter(last_id__gt=F("published_id"))
        if names is not None:
            pending = pending.filter(name__in=list(names))
        published = 0
        for channel in pending.only("name", "published_id"):
            while True:
                events = list(
                    Event.objects.filter(channel=channel, seq__gt=channel.published_id)
                    .select_related("channel")
                    .order_by("seq")[: self.batch_size]
                )
                if not events:
                    break
                started = time.monotonic()
                self.transport.publish(events)
                # lag: from the batch's first event's commit (about) to its publish.
                logger.info(
                    "publish channel=%s ids=%d-%d count=%d ms=%.1f lag_ms=%.1f",
                    channel.name,
                    events[0].seq,
                    events[-1].seq,
                    len(events),
                    (time.monotonic() - started) * 1000,
                    (timezone.now() - events[0].created).total_seconds() * 1000,
                )
                channel.published_id = events[-1].seq
                Channel.objects.filter(pk=channel.pk, published_id__lt=channel.published_id).update(
                    published_id=channel.published_id
                )
                published += len(events)
                if len(events) < self.batch_size:
                    break
        return published

    def note(self, names: Iterable[str]) -> None:
        """Channels that were written to: schedule the snapshot of those that take one."""
        now = time.monotonic()
        for name in names:
            if name not in self._stale and self._snapshot_for(name) is not None:
                self._stale[name] = max(
                    now, self._last_snapshot.get(name, -1e9) + self.snapshot_every
                )

    def take_due_snapshots(self) -> set[str]:
        """Take the snapshots that are due; returns their channels."""
        now = time.monotonic()
        due = {name for name, at in self._stale.items() if at <= now}
        for name in due:
            del self._stale[name]
            self._last_snapshot[name] = now
            take = self._snapshot_for(name)
            if take is not None:
                take(name)
        return due

    def sweep(self) -> int:
        """Everything, as after a start or a lost connection: every snapshot, every event.

        Also trims the log (:func:`realtime.log.trim`).
        """
        trimmed = log.trim()
        if trimmed:
            logger.info("trim events deleted=%d", trimmed)
        if self.snapshots:
            names = Channel.objects.values_list("name", flat=True)
            self.note(n for n in names if self._snapshot_for(n) is not None)
            self._stale = dict.fromkeys(self._stale, 0.0)
            self.take_due_snapshots()
        return self.publish_pending()

    def run_once(self, names: Iterable[str] | None = None) -> int:
        """Note ``names`` (all channels if ``None``), take due snapshots, publish; for tests too."""
        if names is None:
            return self.sweep()
        names = set(names)
        self.note(names)
        names |= self.take_due_snapshots()
        return self.publish_pending(names)

    def _snapshot_for(self, name: str) -> Callable[[str], object] | None:
        for prefix, take in self.snapshots.items():
            if name.startswith(prefix):
                return take
        return None

    # --- the process ------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set, through database restarts and proxy outages."""
        while not stop.is_set():
            try:
                if connection.vendor == "postgresql":
                    self._run_listening(stop)
                else:
                    self._run_polling(stop)
            except (DatabaseError, psycopg.Error, PublishError) as error:
                self._failures += 1
                delay = min(0.1 * 2**self._failures, 5.0)
                logger.warning("publisher error=%r retry_in=%.1fs", error, delay)
                connections.close_all()
                stop.wait(delay)

    def _run_polling(self, stop: threading.Event) -> None:
        # No advisory locks outside PostgreSQL: run only one (SQLite is for one machine).
        logger.info("publisher active (polling every %d ms)", settings.REALTIME_POLL_MS)
        while not stop.is_set():
            self.sweep()
            self._failures = 0
            stop.wait(self.poll_seconds)

    def _run_listening(self, stop: threading.Event) -> None:
        with notify.listening() as listener:
            # Session-level: held until this connection closes, the process's end included.
            if not self._lock(listener):
                logger.info("publisher standby: another publisher holds the lock")
                while not self._lock(listener):
                    if stop.wait(self.poll_seconds):
                        return
            logger.info("publisher active")
            self.sweep()
            self._failures = 0
            last_sweep = time.monotonic()
            while not stop.is_set():
                names = self._wait_for_notifies(listener)
                if time.monotonic() - last_sweep > settings.REALTIME_SWEEP_SECONDS:
                    self.sweep()  # anything whose notification was lost
                    last_sweep = time.monotonic()
                else:
                    self.run_once(names)
                self._failures = 0

    @staticmethod
    def _lock(listener: psycopg.Connection) -> bool:
        row = listener.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()
        return bool(row and row[0])

    def _wait_for_notifies(self, listener: psycopg.Connection) -> set[str]:
        """The channels written to, as notified within the poll interval (or until a snapshot is due)."""
        timeout = self.poll_seconds
        if self._stale:
            timeout = max(0.001, min(timeout, min(self._stale.values()) - time.monotonic()))
        return notify.wait(listener, timeout)


def lag_seconds() -> float | None:
    """Age of the oldest committed event not yet published; ``None`` when none is waiting."""
    oldest = (
        Event.objects.filter(seq__gt=F("channel__published_id"))
        .order_by("created")
        .values_list("created", flat=True)
        .first()
    )
    if oldest is None:
        return None
    return max(0.0, (timezone.now() - oldest).total_seconds())

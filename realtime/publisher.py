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

Whole-state channels (a board's standings) are snapshotted here too, by the
function their app registered (:mod:`realtime.snapshots`). A write to such a
channel only notifies that its state changed; the publisher takes at most one
snapshot per channel per ``REALTIME_SNAPSHOT_INTERVAL_MS``, so any number of
clicks in between share one update, and the last one always follows the last
click. A snapshot it stores notifies as an event, not as a change of state, so
the publisher does not schedule another snapshot for its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Protocol

import psycopg
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from realtime import log, notify, snapshots
from realtime.models import Channel, Event
from realtime.proxy import PublishError

logger = logging.getLogger("realtime.publisher")

# Any 64-bit number that nothing else in the database uses as an advisory lock.
LOCK_KEY = 0x7265616C74696D65  # "realtime"


class Transport(Protocol):
    def publish(self, events: Sequence[Event]) -> None:
        """Publish ``events`` (in this order) or raise :class:`PublishError`."""


class Publisher(notify.Follower):
    """Publishes the log's committed events through ``transport``; see the module."""

    errors = (*notify.Follower.errors, PublishError)

    def __init__(self, transport: Transport) -> None:
        super().__init__(name="publisher", poll_seconds=settings.REALTIME_POLL_MS / 1000)
        self.transport = transport
        self.batch_size: int = settings.REALTIME_PUBLISH_BATCH
        self.snapshot_every: float = settings.REALTIME_SNAPSHOT_INTERVAL_MS / 1000
        self._stale: dict[str, float] = {}  # channel -> when its snapshot is due (monotonic)
        self._last_snapshot: dict[str, float] = {}
        self._last_sweep = 0.0

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
        """Channels whose state changed: schedule the snapshot of those that take one."""
        now = time.monotonic()
        for name in names:
            if name not in self._stale and snapshots.for_channel(name) is not None:
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
            take = snapshots.for_channel(name)
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
        self.note(snapshots.every_channel())
        self._stale = dict.fromkeys(self._stale, 0.0)
        self.take_due_snapshots()
        self._last_sweep = time.monotonic()
        return self.publish_pending()

    def run_once(self, commits: notify.Commits | None = None) -> int:
        """Snapshot the channels whose state changed when due, and publish the channels
        with new events; everything when ``commits`` is ``None``. For tests too."""
        if commits is None:
            return self.sweep()
        self.note(commits.states)
        return self.publish_pending(commits.events | self.take_due_snapshots())

    # --- the process (notify.Follower) --------------------------------------------------

    def started(self, listener: psycopg.Connection | None, stop: threading.Event) -> None:
        """Take the advisory lock (or wait for it as a standby), then publish everything."""
        if listener is None:
            # No advisory locks outside PostgreSQL: run only one (SQLite is for one machine).
            logger.info("publisher active (polling every %d ms)", settings.REALTIME_POLL_MS)
            return  # the first poll looks at everything
        # Session-level: held until this connection closes, the process's end included.
        if not self._lock(listener):
            logger.info("publisher standby: another publisher holds the lock")
            while not self._lock(listener):
                if stop.wait(self.poll_seconds):
                    return
        logger.info("publisher active")
        self.sweep()

    def changed(self, commits: notify.Commits | None) -> None:
        if (
            commits is not None
            and time.monotonic() - self._last_sweep > settings.REALTIME_SWEEP_SECONDS
        ):
            commits = None  # also anything whose notification was lost
        self.run_once(commits)

    def wait_seconds(self) -> float:
        """The poll interval, or less when a snapshot is due sooner."""
        timeout = self.poll_seconds
        if self._stale:
            timeout = max(0.001, min(timeout, min(self._stale.values()) - time.monotonic()))
        return timeout

    @staticmethod
    def _lock(listener: psycopg.Connection) -> bool:
        row = listener.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()
        return bool(row and row[0])


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

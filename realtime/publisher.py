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

import datetime
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import psycopg
from django.conf import settings
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from realtime import log, notify, snapshots
from realtime.models import Channel, Event, PublisherBeat
from realtime.proxy import PublishError

logger = logging.getLogger("realtime.publisher")

# Any 64-bit number that nothing else in the database uses as an advisory lock.
LOCK_KEY = 0x7265616C74696D65  # "realtime"
# Heartbeats of publishers silent for longer than this are deleted.
BEATS_KEPT = datetime.timedelta(days=1)


class Transport(Protocol):
    def publish(self, events: Sequence[Event]) -> None:
        """Publish ``events`` (in this order) or raise :class:`PublishError`."""

    def report(self) -> list[dict[str, Any]]:
        """Each proxy's state, for the heartbeat (and a chance to probe those that are down)."""


class Publisher(notify.Follower):
    """Publishes the log's committed events through ``transport``; see the module."""

    def __init__(self, transport: Transport) -> None:
        super().__init__(name="publisher", poll_seconds=settings.REALTIME_POLL_MS / 1000)
        self.transport = transport
        self.batch_size: int = settings.REALTIME_PUBLISH_BATCH
        self.snapshot_every: float = settings.REALTIME_SNAPSHOT_INTERVAL_MS / 1000
        self._stale: dict[str, float] = {}  # channel -> when its snapshot is due (monotonic)
        self._last_snapshot: dict[str, float] = {}
        self._last_sweep = 0.0
        self.beat_name = f"{socket.gethostname()}:{os.getpid()}"
        self.beat_every: float = settings.REALTIME_HEARTBEAT_SECONDS
        self._last_beat = -1e9
        # After a batch that no proxy took: when to try again, and how many failed in a row.
        self._retry_at = 0.0
        self._publish_failures = 0

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
        names = commits.events | self.take_due_snapshots()
        # Clicks only schedule a snapshot: most wakes have nothing to publish.
        return self.publish_pending(names) if names else 0

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
                self.beat(active=False)
                if stop.wait(self.poll_seconds):
                    return
        logger.info("publisher active")
        self.beat(active=True, now=True)
        self._publish_failures = 0
        self.changed(None)

    def changed(self, commits: notify.Commits | None) -> None:
        """Publish what ``commits`` name; after a failure, everything, once the backoff is over.

        A batch that no proxy took does not cost the lock: the publisher keeps
        it, and its heartbeat, and tries again with backoff; the retry is a
        sweep, which covers the notifications that came in between.
        """
        now = time.monotonic()
        if now >= self._retry_at:
            if self._publish_failures or now - self._last_sweep > settings.REALTIME_SWEEP_SECONDS:
                commits = None  # also anything whose notification was lost
            try:
                self.run_once(commits)
            except PublishError as error:
                self._publish_failures += 1
                delay = min(0.1 * 2**self._publish_failures, 5.0)
                self._retry_at = now + delay
                logger.warning("publish failed error=%s retry_in=%.1fs", error, delay)
            else:
                self._publish_failures = 0
        self.beat(active=True)

    def wait_seconds(self) -> float:
        """The poll interval, or less when a snapshot or a retry is due sooner."""
        due = [*self._stale.values(), *([self._retry_at] if self._publish_failures else [])]
        timeout = self.poll_seconds
        if due:
            timeout = max(0.001, min(timeout, min(due) - time.monotonic()))
        return timeout

    def beat(self, *, active: bool, now: bool = False) -> None:
        """Write this process's heartbeat, at most every ``REALTIME_HEARTBEAT_SECONDS``
        (``now``: at once), with each proxy's state; forget publishers silent for a day."""
        if not now and time.monotonic() - self._last_beat < self.beat_every:
            return
        self._last_beat = time.monotonic()
        proxies = self.transport.report() if active else []
        for proxy in proxies:
            if not proxy["up"]:
                logger.warning(
                    "proxy down target=%s lag_seconds=%s error=%s",
                    proxy["target"],
                    proxy["lag_seconds"],
                    proxy["last_error"],
                )
        PublisherBeat.objects.update_or_create(
            name=self.beat_name,
            defaults={"active": active, "beat_at": Now(), "proxies": proxies},
        )
        PublisherBeat.objects.filter(beat_at__lt=timezone.now() - BEATS_KEPT).exclude(
            name=self.beat_name
        ).delete()

    @staticmethod
    def _lock(listener: psycopg.Connection) -> bool:
        row = listener.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()
        return bool(row and row[0])


def status() -> dict[str, Any]:
    """The publishers as their heartbeats tell, for ``/healthz``.

    ``ok`` when an active publisher wrote its heartbeat within five
    ``REALTIME_HEARTBEAT_SECONDS``; with its name, the heartbeat's age, each
    proxy's state as it sees them, how many standbys are alive, and the lag.
    """
    stale = 5 * settings.REALTIME_HEARTBEAT_SECONDS
    beats = [
        (beat, (beat.now - beat.beat_at).total_seconds())
        for beat in PublisherBeat.objects.annotate(now=Now()).order_by("-beat_at")
    ]
    active = next(((b, age) for b, age in beats if b.active and age <= stale), None)
    report: dict[str, Any] = {
        "ok": active is not None,
        "active": None if active is None else active[0].name,
        "heartbeat_age_seconds": None if active is None else round(active[1], 3),
        "standbys": sum(1 for b, age in beats if not b.active and age <= stale),
        "lag_seconds": lag_seconds(),
        "proxies": [] if active is None else active[0].proxies,
    }
    if active is None:
        last = next((age for b, age in beats if b.active), None)
        report["error"] = (
            "no active publisher has written a heartbeat"
            if last is None
            else f"the active publisher's last heartbeat is {last:.0f} s old"
        )
    return report


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

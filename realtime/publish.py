"""Delivery of committed events, from the web process that committed them.

After commit, :func:`deliver` wakes this process's direct streams of the
channel and publishes the event to the GRIP proxy with ``id`` and
``prev-id``. Pushpin's sequencer reorders publishes that arrive out of order;
a subscriber that still sees a gap (say, a publish that failed) fetches the
missing events from the log through the stream's ``Grip-Link: rel=next``
recovery URL. A failed publish is also sent again (:class:`PublishRetries`)
until a later one of the channel gets through.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import db
from django.conf import settings
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver
from django_eventstream import views as eventstream_views
from django_eventstream.utils import publish_event

logger = logging.getLogger("realtime.publish")


def deliver(channel: str, event_type: str, data: str, event_id: int) -> None:
    """Deliver a committed event: to this process's direct streams and to the proxy."""
    _wake_direct_streams(channel)
    _publish_to_proxy(channel, event_type, data, event_id, attempt=0)


class PublishRetries:
    """Failed publishes that are still worth sending again, per channel (in this process).

    A failed publish is not lost: the event is committed, and Pushpin recovers
    it from the database as soon as a later publish on the channel reveals the
    gap with its ``prev-id``. But when no later event comes (the last message
    of a conversation, the last click on a board), only the stream's next-link
    timer (``EVENTSTREAM_NEXT_LINK_TIMEOUT``, 10 minutes) would fetch it. So a
    failed publish is sent again, after ``FIRST_DELAY`` seconds and twice as
    long each time, ``ATTEMPTS`` tries in all (over about 15 s: a proxy restart, a
    network blip). A retry is dropped once a later event of the channel has
    been published: that publish's gap already makes every subscriber recover it.
    """

    ATTEMPTS = 6
    FIRST_DELAY = 0.5

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, set[int]] = {}  # channel -> failed event ids to send again

    def failed(self, channel: str, event_id: int, attempt: int) -> float | None:
        """Record a failed attempt; seconds until the next one, or ``None`` to give up."""
        with self._lock:
            waiting = self._waiting.setdefault(channel, set())
            if attempt + 1 >= self.ATTEMPTS:
                self._forget(channel, {event_id})
                return None
            waiting.add(event_id)
        return self.FIRST_DELAY * 2**attempt

    def succeeded(self, channel: str, event_id: int) -> None:
        """Drop the retries of this event and of every earlier one of the channel."""
        with self._lock:
            if channel in self._waiting:
                self._forget(channel, {i for i in self._waiting[channel] if i <= event_id})

    def still_wanted(self, channel: str, event_id: int) -> bool:
        with self._lock:
            return event_id in self._waiting.get(channel, ())

    def _forget(self, channel: str, event_ids: set[int]) -> None:
        waiting = self._waiting.get(channel, set())
        waiting -= event_ids
        if not waiting:
            self._waiting.pop(channel, None)


_retries = PublishRetries()


def _publish_to_proxy(
    channel: str, event_type: str, data: str, event_id: int, *, attempt: int
) -> None:
    """Publish to the GRIP proxy with ``id`` and ``prev-id``; retry a failure (PublishRetries)."""
    started = time.monotonic()

    def done(ok: bool, error: str) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        if ok:
            _retries.succeeded(channel, event_id)
            logger.info(
                "publish channel=%s event=%s id=%d ok=true ms=%.1f attempt=%d",
                channel,
                event_type,
                event_id,
                elapsed_ms,
                attempt + 1,
            )
            return
        delay = _retries.failed(channel, event_id, attempt)
        # The event is committed, so it is not lost even when the retries fail:
        # Pushpin recovers it from the database on the next publish's prev-id
        # gap, or when the stream's next link fires; a reconnecting client
        # resumes past it.
        logger.warning(
            "publish channel=%s event=%s id=%d ok=false ms=%.1f attempt=%d %s error=%r",
            channel,
            event_type,
            event_id,
            elapsed_ms,
            attempt + 1,
            "giving up" if delay is None else f"retry_in={delay:g}s",
            error,
        )
        if delay is not None:
            timer = threading.Timer(delay, retry)
            timer.daemon = True
            timer.start()

    def retry() -> None:
        if _retries.still_wanted(channel, event_id):
            _publish_to_proxy(channel, event_type, data, event_id, attempt=attempt + 1)

    try:
        publish_event(
            channel,
            event_type,
            data,
            str(event_id),
            str(event_id - 1),
            blocking=False,
            callback=done,
        )
    except Exception as exc:  # never let a proxy problem undo a committed write
        done(False, str(exc))


def _wake_direct_streams(channel: str) -> None:
    """Make this process's direct streams of ``channel`` read what they miss from the database.

    Not ``add_to_queues(event)``: the on_commit callbacks of concurrent writers
    run in any order, so queued events could reach a stream out of order (8
    before 7; the proxy reorders by prev-id, a direct stream does not). A
    stream told to re-read (django-eventstream's overflow path) reads every
    event after its own last id from the database: in order, each once, and
    also the events that another process committed.
    """
    manager = eventstream_views.get_listener_manager()
    with manager.lock:
        listeners = list(manager.listeners_by_channel.get(channel, ()))
        for listener in listeners:
            listener.overflow = True
    for listener in listeners:
        listener.wake_threadsafe()


@dataclass
class _Slot:
    pending: bool = False  # a run is wanted that has not started yet
    running: bool = False
    started: float = float("-inf")  # when the last run started (monotonic)
    failures: int = 0  # runs in a row that raised


class Coalescer:
    """Runs a job per key at most once per interval, and always once after the last request.

    For channels whose every event carries the whole state (a board's
    standings): many writes within ``interval`` share one snapshot instead of
    publishing one event each. A request that arrives while no run is pending
    gets a run that starts no earlier than ``interval`` after the previous
    one started, and so reads what that request committed; a request made
    while a run is pending shares it; a request made while a run is in
    progress (which may have read before it) gets another run after it.

    A run that is due at once runs in the requesting thread; a later one runs
    on a timer thread, which gives its database connection back when done.
    A run that raises (say, the database is briefly away) is retried on its
    own, after twice the wait each time up to ``RETRY_MAX`` seconds, at most
    ``RETRIES`` times in a row: the writes it follows are committed, and
    their last state must still reach subscribers when no other write comes.
    """

    RETRIES = 10
    RETRY_MAX = 30.0

    def __init__(self, interval: Callable[[], float]) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}

    def request(self, key: str, job: Callable[[], object]) -> None:
        with self._lock:
            slot = self._slots.setdefault(key, _Slot())
            if slot.pending:
                return
            slot.pending = True
            if slot.running:
                return  # the run in progress starts another when it ends
            delay = self._claim(slot)
        self._start(key, job, delay, timer=False)

    def _claim(self, slot: _Slot) -> float:
        """Seconds until the pending run may start; marks it running if that is now."""
        wait = self._interval()
        if slot.failures:
            wait = min(max(wait, 0.05) * 2**slot.failures, self.RETRY_MAX)
        delay = max(0.0, slot.started + wait - time.monotonic())
        if delay == 0.0:
            slot.pending, slot.running, slot.started = False, True, time.monotonic()
        return delay

    def _start(self, key: str, job: Callable[[], object], delay: float, *, timer: bool) -> None:
        while delay == 0.0:
            error: Exception | None = None
            try:
                job()
            except Exception as raised:
                error = raised
            finally:
                if timer:
                    db.connections.close_all()
            with self._lock:
                slot = self._slots[key]
                slot.running = False
                slot.failures = 0 if error is None else slot.failures + 1
                if error is not None:
                    retry = slot.failures <= self.RETRIES
                    logger.error(
                        "coalesced job failed key=%s failures=%d %s",
                        key,
                        slot.failures,
                        "retrying" if retry else "giving up until the next request",
                        exc_info=error,
                    )
                    if retry:
                        slot.pending = True
                    else:
                        slot.failures = 0
                if not slot.pending:
                    return
                delay = self._claim(slot)
        waiting = threading.Timer(delay, self._due, args=(key, job))
        waiting.daemon = True
        waiting.start()

    def _due(self, key: str, job: Callable[[], object]) -> None:
        with self._lock:
            delay = self._claim(self._slots[key])
        self._start(key, job, delay, timer=True)


_snapshots = Coalescer(lambda: settings.REALTIME_SNAPSHOT_INTERVAL_MS / 1000)


def snapshot_after_commit(channel: str, take: Callable[[], object]) -> None:
    """After the current transaction commits, have ``take`` store ``channel``'s current state.

    ``take`` stores and publishes a fresh whole-state event (through
    :func:`lock_channel` and :func:`send`). Writes to the channel within
    ``REALTIME_SNAPSHOT_INTERVAL_MS`` of each other share one snapshot, so
    subscribers get at most one event per interval however fast the writes
    come, and the last one always reflects the last write. Nothing runs if
    the transaction rolls back.
    """
    transaction.on_commit(lambda: _snapshots.request(channel, take))


@receiver(setting_changed)
def _reset_publisher(*, setting: str, **kwargs: Any) -> None:
    """django_grip caches its publisher on first use; rebuild it when GRIP_URL changes."""
    if setting in {"GRIP_URL", "GRIP_PROXIES"}:
        import django_grip

        with django_grip._lock:
            django_grip._pubcontrol = None

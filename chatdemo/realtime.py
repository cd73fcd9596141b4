"""The one road for realtime events.

This module is the only place that talks to django-eventstream or to the GRIP
proxy. It owns the channel names, stores events in the caller's transaction,
publishes them only after that transaction commits, and serves the SSE
endpoints. Chat and leaderboard both go through it, so a fix to delivery is
made once.

How one event travels:

1. A service opens ``transaction.atomic()`` and calls :func:`lock_channel`.
   That takes the channel's row lock in django-eventstream's ``EventCounter``
   table, so writers of one channel queue up until commit. Rows written after
   the lock therefore get ids in the same order as the channel's event ids.
2. The service writes its rows and calls :func:`send`, which appends the event
   to django-eventstream's ``Event`` table in the same transaction and
   registers a ``transaction.on_commit`` callback. A rollback discards both the
   rows and the event, and nothing is published.

   A service that writes one row per event (a chat message) calls
   :func:`insert_and_send` instead: the same steps, on PostgreSQL in a single
   statement, so that the channel's lock is held for one round trip.
3. After commit, :func:`_publish` hands the event to local listeners (the
   direct ASGI stream) and publishes it to the GRIP proxy with ``id`` and
   ``prev-id``. Pushpin's sequencer reorders publishes that arrive out of
   order; a subscriber that still sees a gap (say, a publish that failed)
   fetches the missing events from the database through the stream's
   ``Grip-Link: rel=next`` recovery URL. A failed publish is also sent again
   (:class:`PublishRetries`) until a later one of the channel gets through.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote

import jwt
from asgiref.sync import sync_to_async
from django import db
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.signals import setting_changed
from django.db import models, transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django_eventstream import models as eventstream_models
from django_eventstream import storage as eventstream_storage
from django_eventstream import views as eventstream_views
from django_eventstream.models import EventCounter
from django_eventstream.utils import get_storage, make_id, parse_last_event_id, publish_event

from chatdemo.http import json_error

logger = logging.getLogger("chatdemo.realtime")

EventType = Literal["message", "update"]

# A resume id as django-eventstream writes it: "<channel>:<id>[,<channel>:<id>...]".
_LAST_EVENT_ID = re.compile(r"^[A-Za-z0-9_.~%-]+:\d{1,18}(,[A-Za-z0-9_.~%-]+:\d{1,18})*$")
_PLAIN_ROOM = re.compile(r"^[A-Za-z0-9_.-]+$")


def room_channel(room: str) -> str:
    """The channel that carries a chat room's ``message`` events.

    ``room-<room>`` when the name needs no percent-encoding; otherwise (``café``,
    ``a:b``) ``room~`` and a hash of the name: django-eventstream writes SSE ids
    with the channel percent-encoded but does not escape their ``%`` for
    Pushpin's build-id filter, which then drops the stream.
    """
    if _PLAIN_ROOM.match(room):
        return f"room-{room}"
    return f"room~{hashlib.sha256(room.encode()).hexdigest()[:32]}"


def board_channel(board_id: int) -> str:
    """The channel that carries a leaderboard's ``update`` events."""
    return f"board-{board_id}"


def lock_channel(channel: str) -> int:
    """Serialize writers of ``channel`` until the current transaction ends.

    Call it first in the transaction, before writing the rows the event
    describes, so that their ids follow the channel's event order. Returns the
    id that the transaction's next :func:`send` on ``channel`` will get.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_channel() must run inside transaction.atomic()")
    locked = EventCounter.objects.select_for_update().filter(name=channel)
    value = locked.values_list("value", flat=True).first()
    if value is None:
        # get_or_create runs in its own savepoint, so two first writers of a
        # new channel do not abort the caller's transaction on the unique name.
        EventCounter.objects.get_or_create(name=channel)
        value = locked.values_list("value", flat=True).get()
    return int(value) + 1


def send(channel: str, event_type: EventType, payload: dict[str, Any]) -> int:
    """Store an event in the current transaction and publish it after commit.

    The event goes to django-eventstream's tables (``EventCounter``/``Event``),
    in the layout its storage reads: the Last-Event-ID resume and Pushpin's
    recovery requests are answered from them. Returns the event's id in
    ``channel``. The caller must hold :func:`lock_channel` for the channel.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("send() must run inside transaction.atomic()")
    data = json.dumps(payload, cls=DjangoJSONEncoder)
    # Written here rather than through django-eventstream's Event.save(), which
    # re-reads and re-locks the counter in a savepoint and trims old events on
    # every append: three statements instead of about nine while the channel's
    # lock is held, and that lock is what serializes a busy room or board.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(EventCounter._meta.db_table)} "  # noqa: S608 - quoted model table; values are parameters
            "SET value = value + 1, updated = %s WHERE name = %s RETURNING value",
            [timezone.now(), channel],
        )
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError(f"send() needs lock_channel({channel!r}) first")
    event_id = int(row[0])
    events = [
        eventstream_models.Event(
            channel=channel, type=event_type, eid=event_id, data=json.dumps(data)
        )
    ]
    if event_id == 1:
        # django-eventstream resumes "after event N" only if N is stored; this
        # placeholder lets a client at position 0 resume, as its storage does.
        events.insert(0, eventstream_models.Event(channel=channel, type="", eid=0, data=""))
    eventstream_models.Event.objects.bulk_create(events)
    transaction.on_commit(lambda: _publish(channel, event_type, data, event_id))
    return event_id


class _RowId:
    """Stands for a row's primary key in a payload built before the row exists."""


# A string PostgreSQL cannot store (it has a NUL), so it cannot collide with
# anything in a payload that is also stored.
_ROW_ID_TEXT = "\x00row-id\x00"
_ROW_ID_JSON = json.dumps(_ROW_ID_TEXT)


class _PayloadEncoder(DjangoJSONEncoder):
    def default(self, o: object) -> Any:
        return _ROW_ID_TEXT if isinstance(o, _RowId) else super().default(o)


def insert_and_send(
    channel: str,
    event_type: EventType,
    instance: models.Model,
    payload: Callable[[Any], dict[str, Any]],
    *,
    event_id_field: str,
) -> int:
    """Insert ``instance`` and its event on ``channel``, atomically; publish after commit.

    The row and the event are one unit: ``instance``'s ``event_id_field`` is
    set to the event's id, ``payload(instance)`` is the event's data, and a
    rollback of the caller's transaction discards both and publishes nothing.
    Row ids follow the channel's event order (the row is inserted under the
    channel's lock), so subscribers see rows in id order. Returns the event id.

    On PostgreSQL this is one statement: the channel's counter row is locked,
    the row and the event are inserted, and (outside ``transaction.atomic()``)
    it commits at once, so a busy channel's lock is held for one round trip
    instead of five. ``payload`` is built before the row exists, with a
    stand-in for the primary key that the statement replaces by the real id;
    it must use ``instance.pk`` as a plain value.
    """
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        with transaction.atomic():
            setattr(instance, event_id_field, lock_channel(channel))
            instance.save(force_insert=True)
            return send(channel, event_type, payload(instance))

    meta = instance._meta
    pk_column = meta.pk.column
    event_field = meta.get_field(event_id_field)
    fields = [f for f in meta.concrete_fields if f is not meta.pk and f is not event_field]
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    saved_pk = instance.pk
    instance.pk = _RowId()
    try:
        text = json.dumps(payload(instance), cls=_PayloadEncoder)
    finally:
        instance.pk = saved_pk
    head, _, tail = text.partition(_ROW_ID_JSON)
    if _ROW_ID_JSON not in text or _ROW_ID_JSON in tail:
        raise ValueError("payload(instance) must carry instance.pk exactly once")
    quote = connection.ops.quote_name
    counter_table = quote(EventCounter._meta.db_table)
    event_table = quote(eventstream_models.Event._meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    pk, event_column = quote(pk_column), quote(event_field.column)
    now = timezone.now()
    # The counter's UPDATE takes the channel's row lock before the row gets its
    # id: the row's INSERT reads the counter's new value, so it runs after.
    sql = f"""
        WITH counter AS (
            UPDATE {counter_table} SET value = value + 1, updated = %s
            WHERE name = %s RETURNING value
        ), inserted AS (
            INSERT INTO {quote(meta.db_table)} ({columns}, {event_column})
            SELECT {placeholders}, counter.value FROM counter
            RETURNING {pk}, {event_column}
        ), placeholder AS (
            INSERT INTO {event_table} (channel, type, eid, data, created)
            SELECT %s, '', 0, '', %s FROM counter WHERE counter.value = 1
        ), event AS (
            INSERT INTO {event_table} (channel, type, eid, data, created)
            SELECT %s, %s, inserted.{event_column},
                to_json(%s::text || inserted.{pk} || %s::text)::text, %s
            FROM inserted
        )
        SELECT {pk}, {event_column} FROM inserted
    """  # noqa: S608 - quoted model tables and columns; every value is a parameter
    params = [now, channel, *values, channel, now, channel, event_type, head, tail, now]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            # A channel's first event: create its counter (in a savepoint of
            # its own inside a transaction), then write it as any other.
            EventCounter.objects.get_or_create(name=channel)
            cursor.execute(sql, params)
            row = cursor.fetchone()
    instance.pk, event_id = row[0], int(row[1])
    setattr(instance, event_id_field, event_id)
    instance._state.adding = False
    data = f"{head}{instance.pk}{tail}"
    transaction.on_commit(lambda: _publish(channel, event_type, data, event_id))
    return event_id


def send_changed(channel: str, event_type: EventType, payload: dict[str, Any]) -> int | None:
    """:func:`send`, unless the channel's latest stored event already carries ``payload``.

    For whole-state events: a snapshot that finds nothing new since the last
    one stores and publishes nothing, and returns ``None``. The caller must
    hold :func:`lock_channel` for the channel.
    """
    if is_latest(channel, payload):
        return None
    return send(channel, event_type, payload)


def is_latest(channel: str, payload: dict[str, Any]) -> bool:
    """Whether the channel's latest stored event carries ``payload`` (as a client decodes it).

    Without :func:`lock_channel` the answer may be out of date by the time it
    is used: a cheap first check, to be repeated under the lock before acting.
    """
    return _latest_payload(channel) == json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def _latest_payload(channel: str) -> object | None:
    """The payload of the channel's latest stored event, or ``None`` when none is stored."""
    stored = (
        eventstream_models.Event.objects.filter(channel=channel, eid__gt=0)
        .order_by("-eid")
        .values_list("data", flat=True)
        .first()
    )
    # send() stores the JSON text as a JSON string, as django-eventstream does.
    return None if stored is None else json.loads(json.loads(stored))


# Stored events are kept as long as django-eventstream keeps them (24 hours);
# a client that resumes from an older one gets stream-reset.
_EVENT_RETENTION = datetime.timedelta(minutes=eventstream_storage.EVENT_TIMEOUT)
_TRIM_EVERY = 60.0  # seconds, per process
_last_trim = 0.0


def _trim_events() -> None:
    """Delete expired events, at most once a minute per process, after commit."""
    global _last_trim
    now = time.monotonic()
    if now - _last_trim < _TRIM_EVERY:
        return
    _last_trim = now
    try:
        cutoff = timezone.now() - _EVENT_RETENTION
        deleted, _ = eventstream_models.Event.objects.filter(created__lt=cutoff).delete()
        if deleted:
            logger.info("trim events deleted=%d", deleted)
    except Exception:  # a failed clean-up must not fail the request that triggered it
        logger.exception("trim events failed")


def _publish(channel: str, event_type: str, data: str, event_id: int) -> None:
    """Deliver a committed event: to this process's direct streams and to the proxy."""
    _trim_events()
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


def wants_stream(request: HttpRequest) -> bool:
    """Whether a request to a URL that serves both JSON and SSE asks for the stream.

    True when ``Accept`` lists ``text/event-stream`` (browsers' EventSource
    sends it), and for Pushpin's recovery requests (``?link=next``), which
    belong to a stream whatever headers they carry.
    """
    if request.GET.get("link") == "next":
        return True
    return any(
        (media.main_type.lower(), media.sub_type.lower()) == ("text", "event-stream")
        for media in request.accepted_types
    )


def stream(
    request: HttpRequest,
    channel: str,
    *,
    replay_latest: bool = False,
    snapshot: Callable[[], object] | None = None,
    refresh: Callable[[], object] | None = None,
) -> HttpResponse:
    """Serve ``channel`` as SSE: GRIP instructions behind a proxy, a stream otherwise.

    By default a client resumes after its ``Last-Event-ID`` (or from now), and
    gets every event it missed: right for a channel whose events add up, like
    chat messages.

    ``replay_latest=True`` is for a channel whose every event carries the whole
    state (a board's standings). A client that connects is resumed from just
    before the channel's latest event, unless it has already seen that one, so
    it gets the current state at once, as a stored event with its id, and then
    the live events after it, in order: never an older state after a newer one.
    ``snapshot`` stores a fresh event with the current state on the channel;
    it is called when the latest event cannot be replayed (none yet, or
    django-eventstream has trimmed it). Without it, such a client gets
    ``stream-reset``. ``refresh`` is called first on every request, Pushpin's
    recovery requests included: it stores a fresh event when the latest
    stored one no longer carries the committed state (its coalesced snapshot
    is still to come, or the process that was to take it stopped), so a
    client that connects never starts from an older state, and a held stream
    gets that state at its next recovery request at the latest. Pushpin's own
    recovery requests (``?link=next``) keep their position.
    """
    for source, value in (
        ("Last-Event-ID", request.headers.get("Last-Event-ID")),
        ("lastEventId", request.GET.get("lastEventId")),
    ):
        if value and not _LAST_EVENT_ID.match(value):
            return json_error(400, source, f"{source} must look like '{channel}:<event id>'")
    if refresh is not None:
        # Pushpin's recovery requests too: an idle stream's next link (every
        # EVENTSTREAM_NEXT_LINK_TIMEOUT) then also delivers a state whose
        # update was never stored, when no write and no connect came since.
        refresh()
    if replay_latest and request.GET.get("link") != "next":
        position = _replay_position(request, channel, snapshot)
        # django-eventstream reads the resume point from this header first.
        request.META["HTTP_LAST_EVENT_ID"] = make_id({channel: position})
    try:
        response = eventstream_views.events(request, channels=[channel])
    except jwt.PyJWTError:
        # A tampered or expired es-meta token in a next-link URL.
        return json_error(400, "es-meta", "invalid or expired es-meta token")
    instruct = getattr(getattr(request, "grip", None), "instruct", None)
    if instruct is not None and instruct.next_link:
        instruct.next_link_timeout = settings.EVENTSTREAM_NEXT_LINK_TIMEOUT
        # django-eventstream builds the link from the decoded path: a room such
        # as "café" or "a,b" must be percent-encoded in Grip-Link (a "," there
        # would split the header's value in two).
        if instruct.next_link.startswith(f"{request.path}?"):
            encoded = quote(request.path, safe="/")
            instruct.next_link = encoded + instruct.next_link[len(request.path) :]
    if instruct is not None:
        _subscribe_to_events_only(instruct)
    if isinstance(response, StreamingHttpResponse) and response.is_async:
        response.streaming_content = _releasing_connections(response.streaming_content)
    return response


def _subscribe_to_events_only(instruct: Any) -> None:
    """Keep only what our streams use of django-eventstream's GRIP subscription.

    django-eventstream also subscribes every stream to ``user-<id>`` (to kick
    a user off a channel) and runs the ``skip-users`` filter on every
    delivery (for ``send_event(skip_user_ids=...)``). Neither is used here,
    and both cost Pushpin work per stream and per delivery: at 5,000
    subscribers its handler spent about 30% more CPU per delivery on these
    streams than on bare ones (docs/BENCHMARKS.md). ``build-id`` stays: it
    renders each event's id and unescapes the ``%%`` in stored data.
    """
    instruct.channels = [c for c in instruct.channels if c.name.startswith("events-")]
    for channel in instruct.channels:
        channel.filters = [f for f in channel.filters if f != "skip-users"]


async def _releasing_connections(chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Pass a direct stream's chunks on, giving its database connection back after each.

    django-eventstream reads the database in the request's own thread and the
    connection stays open until the request ends: for a stream, until the
    client leaves. With one connection per open stream, PostgreSQL's
    max_connections (100 by default) capped direct mode near 100 subscribers
    per database (docs/BENCHMARKS.md). Closed after each read, it goes back to
    the pool (DATABASE_POOL_MAX_SIZE), or is opened again at the next read.
    """
    async for chunk in chunks:
        # thread_sensitive: the same thread, hence the same connection, as the reads.
        await sync_to_async(db.connections.close_all, thread_sensitive=True)()
        yield chunk


# A stored event this close to django-eventstream's 24-hour expiry may be
# trimmed before the stream reads it, so it counts as gone already.
_REPLAYABLE_FOR = datetime.timedelta(minutes=eventstream_storage.EVENT_TIMEOUT - 10)


def _client_position(request: HttpRequest, channel: str) -> int | None:
    """The client's last seen event id in ``channel`` (header first, then ``lastEventId``)."""
    value = request.headers.get("Last-Event-ID") or request.GET.get("lastEventId")
    if not value:
        return None
    for name, event_id in parse_last_event_id(value).items():
        if unquote(name) == channel:
            return int(event_id)
    return None


def _replay_position(
    request: HttpRequest, channel: str, snapshot: Callable[[], object] | None
) -> int:
    """Where to resume a client so that it gets exactly the channel's latest event.

    django-eventstream resumes only after an event that is still stored, so
    the event before the latest must exist too. After expiry it may take two
    snapshots: the first becomes that predecessor.
    """
    client = _client_position(request, channel)
    for attempt in range(3):
        current = get_storage().get_current_id(channel)
        if client == current > 0:
            return current  # it has seen the latest state already
        # An id from before the latest, or one this database never issued.
        position = current - 1
        replayable = timezone.now() - _REPLAYABLE_FOR
        stored = eventstream_models.Event.objects.filter(
            channel=channel, eid__in=(position, current), created__gt=replayable
        ).count()
        if current > 0 and stored == 2:
            return position
        if snapshot is None or attempt == 2:
            break
        snapshot()
    # Unreplayable: django-eventstream answers stream-reset, and the client reloads.
    return position


def proxy_status(timeout: float = 2.0) -> dict[str, Any]:
    """Whether the GRIP proxy's publish API accepts a publish, for the health check.

    Sends an empty publish (``{"items": []}``) to each configured proxy with
    the credentials real publishes use, so a wrong key shows up here and not
    first as lost events. ``{"ok": true, "mode": "direct"}`` when no proxy is
    configured. The target is reported without its key.
    """
    import urllib.error
    import urllib.request

    import django_grip

    if not settings.GRIP_URL:
        return {"ok": True, "mode": "direct"}
    targets = []
    for client in django_grip.get_pubcontrol().clients:
        headers = {"Content-Type": "application/json"}
        auth = client._gen_auth_header()  # the header pubcontrol publishes with
        if auth:
            headers["Authorization"] = auth
        request = urllib.request.Request(  # noqa: S310 - GRIP_URL is http(s), checked in settings
            f"{client.uri}/publish/", data=b'{"items": []}', headers=headers, method="POST"
        )
        started = time.monotonic()
        target: dict[str, Any] = {"target": client.uri}
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                target["status"] = response.status
        except urllib.error.HTTPError as error:
            target["status"] = error.code
        except OSError as error:
            target["error"] = str(getattr(error, "reason", error))
        target["ok"] = 200 <= target.get("status", 0) < 300
        target["ms"] = round((time.monotonic() - started) * 1000, 1)
        targets.append(target)
    return {
        "ok": bool(targets) and all(t["ok"] for t in targets),
        "mode": "grip",
        "targets": targets,
    }


@receiver(setting_changed)
def _reset_publisher(*, setting: str, **kwargs: Any) -> None:
    """django_grip caches its publisher on first use; rebuild it when GRIP_URL changes."""
    if setting in {"GRIP_URL", "GRIP_PROXIES"}:
        import django_grip

        with django_grip._lock:
            django_grip._pubcontrol = None

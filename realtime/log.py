"""Writes to the event log: a channel's events, stored in the writer's transaction.

How a service stores an event:

1. It opens ``transaction.atomic()`` and calls :func:`lock_channel`, which
   takes the channel's row lock (``Channel.last_id``): writers of one channel
   queue up until commit, so rows written after the lock get ids in the
   channel's event order.
2. It writes its rows, then calls :func:`send`, which appends the event to the
   log in the same transaction and notifies the listeners
   (:mod:`realtime.notify`), which PostgreSQL tells only on commit. A
   rollback discards the rows and the event, and nothing is delivered.

That is all a web process does. The publisher process
(:mod:`realtime.publisher`) publishes committed events to the proxy, and in
direct mode each app process wakes its own streams (:mod:`realtime.direct`).

A service that writes one row per event (a chat message) calls
:func:`insert_and_send` instead: the same steps, on PostgreSQL in a single
statement, so that the channel's lock is held for one round trip.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import F, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from base.errors import Unavailable
from realtime import notify
from realtime.channels import EventType
from realtime.models import Channel, Event

logger = logging.getLogger("realtime.log")


def lock_channel(channel: str) -> int:
    """Serialize writers of ``channel`` until the current transaction ends.

    Call it first in the transaction, before writing the rows the event
    describes, so that their ids follow the channel's event order. Returns the
    id that the transaction's next :func:`send` on ``channel`` will get.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_channel() must run inside transaction.atomic()")
    locked = Channel.objects.select_for_update().filter(name=channel)
    last_id = locked.values_list("last_id", flat=True).first()
    if last_id is None:
        # get_or_create runs in its own savepoint, so two first writers of a
        # new channel do not abort the caller's transaction on the unique name.
        Channel.objects.get_or_create(name=channel)
        last_id = locked.values_list("last_id", flat=True).get()
    return last_id + 1


def current_id(channel: str) -> int:
    """The id of the channel's latest committed event; 0 when it has none."""
    return Channel.objects.filter(name=channel).values_list("last_id", flat=True).first() or 0


def current_id_expression(channel: str) -> Coalesce:
    """:func:`current_id` as an SQL expression, to annotate a read of the rows the channel's
    events describe: read in the same statement, it comes from the same snapshot as they do."""
    latest = Channel.objects.filter(name=channel).values("last_id")[:1]
    return Coalesce(Subquery(latest), Value(0), output_field=models.BigIntegerField())


def append(channel: str, event_type: str, payload: dict[str, Any]) -> int:
    """Store an event in the current transaction; returns its id in ``channel``.

    The caller must hold :func:`lock_channel` for the channel.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("append() must run inside transaction.atomic()")
    if not Channel.objects.filter(name=channel).update(last_id=F("last_id") + 1):
        raise RuntimeError(f"append() needs lock_channel({channel!r}) first")
    row = Channel.objects.only("pk", "last_id").get(name=channel)
    Event.objects.create(channel=row, seq=row.last_id, type=event_type, data=payload)
    return row.last_id


def send(channel: str, event_type: EventType, payload: dict[str, Any]) -> int:
    """:func:`append` an event and notify the listeners. Returns its id in ``channel``.

    The caller must hold :func:`lock_channel` for the channel.
    """
    event_id = append(channel, event_type, json.loads(data_text(payload)))
    notify.notify(channel)
    return event_id


def state_changed(channel: str) -> None:
    """A whole-state channel's state changed without an event: the publisher snapshots it.

    Sent in the current transaction, so the publisher hears of it on commit
    (:mod:`realtime.snapshots`, :mod:`realtime.publisher`).
    """
    notify.notify_state(channel)


def data_text(data: object) -> str:
    """An event's data as the JSON text its SSE ``data:`` carries."""
    return json.dumps(data, cls=DjangoJSONEncoder)


class _RowId:
    """Stands for a row's primary key in a payload built before the row exists."""


# A string PostgreSQL cannot store (it has a NUL), so it cannot collide with
# anything in a payload that is also stored.
_ROW_ID_TEXT = "\x00row-id\x00"
_ROW_ID_JSON = json.dumps(_ROW_ID_TEXT)


class _PayloadEncoder(DjangoJSONEncoder):
    def default(self, o: object) -> Any:
        return _ROW_ID_TEXT if isinstance(o, _RowId) else super().default(o)


# What a write refused for a full backlog tells the client to wait, in seconds.
BACKLOG_RETRY_AFTER_SECONDS = 1


def backlog_limit() -> int:
    """How many of a channel's events may wait for the publisher before writers are refused
    (``REALTIME_MAX_BACKLOG``; without a proxy, or at 0, no limit)."""
    if not settings.GRIP_PROXIES or settings.REALTIME_MAX_BACKLOG <= 0:
        return 2**62
    return int(settings.REALTIME_MAX_BACKLOG)


def insert_and_send(
    channel: str,
    event_type: EventType,
    instance: models.Model,
    payload: Callable[[Any], dict[str, Any]],
    *,
    event_id_field: str,
) -> int:
    """Insert ``instance`` and its event on ``channel``, atomically, and notify the listeners.

    The row and the event are one unit: ``instance``'s ``event_id_field`` is
    set to the event's id, ``payload(instance)`` is the event's data, and a
    rollback of the caller's transaction discards both, and nobody is notified.
    Row ids follow the channel's event order (the row is inserted under the
    channel's lock), so subscribers see rows in id order. Returns the event id.

    Raises :class:`base.errors.Unavailable`, and stores nothing, when
    :func:`backlog_limit` events of the channel already wait for the publisher:
    writes that come faster than the proxy takes them are refused (a 503 with
    ``Retry-After``) rather than delivered later and later (docs/EVENT_DELIVERY.md).

    On PostgreSQL this is one statement: the channel's row is locked, the row
    and the event are inserted, and (outside ``transaction.atomic()``) it
    commits at once, so a busy channel's lock is held for one round trip
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
    event_field = meta.get_field(event_id_field)
    if not isinstance(event_field, models.Field):
        raise TypeError(f"{event_id_field} must be a field of {meta.label}, not a relation")
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
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    pk, event_column = quote(meta.pk.column), quote(event_field.column)
    # The channel's UPDATE takes its row lock before the row gets its id: the
    # row's INSERT reads the channel's new last_id, so it runs after.
    sql = f"""
        WITH channel AS (
            UPDATE {quote(Channel._meta.db_table)} SET last_id = last_id + 1
            WHERE name = %s AND last_id - published_id < %s RETURNING id, last_id
        ), inserted AS (
            INSERT INTO {quote(meta.db_table)} ({columns}, {event_column})
            SELECT {placeholders}, channel.last_id FROM channel
            RETURNING {pk}, {event_column}
        ), event AS (
            INSERT INTO {quote(Event._meta.db_table)} (channel_id, seq, type, data, created)
            SELECT channel.id, inserted.{event_column}, %s,
                (%s::text || inserted.{pk} || %s::text)::jsonb, %s
            FROM channel, inserted
        )
        SELECT {pk}, {event_column}, pg_notify(%s, %s) FROM inserted
    """  # noqa: S608 - quoted model tables and columns; every value is a parameter
    params = [
        channel,
        backlog_limit(),
        *values,
        event_type,
        head,
        tail,
        timezone.now(),
        notify.NOTIFY_CHANNEL,
        channel,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            # A channel's first event: create its row (in a savepoint of its
            # own inside a transaction), then write it as any other. Or a full
            # backlog, if the row was there.
            Channel.objects.get_or_create(name=channel)
            cursor.execute(sql, params)
            row = cursor.fetchone()
    if row is None:
        raise Unavailable(
            "channel",
            "events are stored faster than they are delivered: try again shortly",
            retry_after=BACKLOG_RETRY_AFTER_SECONDS,
        )
    instance.pk, event_id = row[0], int(row[1])
    setattr(instance, event_id_field, event_id)
    instance._state.adding = False
    return event_id


def send_changed(channel: str, event_type: EventType, payload: dict[str, Any]) -> int | None:
    """:func:`send`, unless the channel's latest stored event already carries ``payload``.

    For whole-state events: a snapshot that finds nothing new since the last
    one stores nothing, and returns ``None``. The caller must
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
    return bool(latest_data(channel) == json.loads(data_text(payload)))


def latest_data(channel: str) -> Any:
    """The data of the channel's latest stored event, or ``None`` when it has none.

    For a whole-state channel, that is what a subscriber that connects now
    gets first (:func:`realtime.stream.stream` with ``replay_latest``).
    """
    return (
        Event.objects.filter(channel__name=channel)
        .order_by("-seq")
        .values_list("data", flat=True)
        .first()
    )


def retention() -> datetime.timedelta:
    """How long events are kept for clients that resume (``REALTIME_EVENT_RETENTION_HOURS``)."""
    return datetime.timedelta(hours=settings.REALTIME_EVENT_RETENTION_HOURS)


def trim() -> int:
    """Delete events older than :func:`retention`, but never a channel's latest one.

    A channel's latest event is what a new subscriber of a whole-state channel
    (a board) replays, so it stays however old it is. Returns how many were deleted.
    """
    cutoff = timezone.now() - retention()
    expired = Event.objects.filter(created__lt=cutoff).exclude(seq=F("channel__last_id"))
    deleted, _ = expired.delete()
    return deleted

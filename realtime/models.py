"""The event log: each channel's events, in a gapless sequence per channel."""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class Channel(models.Model):
    """One event channel (``room-<room>``, ``board-<id>``): its last event's number, and how far
    the publisher got.

    ``last_id`` is bumped in the transaction that appends an event, so its row
    lock serializes a channel's writers: numbers are gapless, and a channel's
    events commit in number order.
    """

    name = models.CharField(max_length=255, unique=True)
    last_id = models.BigIntegerField(default=0)
    # The last event the publisher handed to the proxy (realtime.publisher).
    published_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} @{self.last_id}"


class Event(models.Model):
    """One event of a channel: its number in the channel, its SSE type and its JSON data."""

    # No index of its own: realtime_event_channel_seq starts with channel.
    channel = models.ForeignKey(
        Channel, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    seq = models.BigIntegerField()
    type = models.CharField(max_length=64)
    data = models.JSONField(encoder=DjangoJSONEncoder)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "seq"], name="realtime_event_channel_seq")
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.seq} {self.type}"


class PublisherBeat(models.Model):
    """A publisher process's heartbeat: written every ``REALTIME_HEARTBEAT_SECONDS`` by the
    active publisher and by each standby, whether or not anything is to be published, so
    that ``/healthz`` tells a dead or stuck publisher from an idle one within seconds."""

    name = models.CharField(max_length=255, unique=True)  # host:pid
    active = models.BooleanField(default=False)
    beat_at = models.DateTimeField()  # the database's clock, shared by every host
    # The active publisher's view of each proxy (realtime.proxy.ProxyState.report).
    proxies = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"{self.name} {'active' if self.active else 'standby'} @{self.beat_at}"

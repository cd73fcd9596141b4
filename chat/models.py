from __future__ import annotations

from django.db import models
from django.utils import timezone

from chat.validation import NICKNAME_MAX_LENGTH, ROOM_MAX_LENGTH


class Message(models.Model):
    """One chat message. Its ``message`` event is stored in the same transaction."""

    room = models.CharField(max_length=ROOM_MAX_LENGTH)
    author = models.CharField("from", max_length=NICKNAME_MAX_LENGTH)
    text = models.TextField()
    created = models.DateTimeField(default=timezone.now)
    # The id of this message's event in the room's channel, set as the two are
    # stored together (realtime.log.insert_and_send).
    event_id = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [models.Index(fields=["room", "-id"], name="chat_message_room_newest")]
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.room} #{self.pk} {self.author}: {self.text[:40]}"

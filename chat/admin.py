"""Messages in the Django admin. A delete, of one message or of a selection, goes through
:func:`chat.services.message_delete`, so that open pages remove the messages too."""

from __future__ import annotations

import contextlib

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from base.errors import NotFound
from chat import services
from chat.models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin[Message]):
    list_display = ("id", "room", "author", "created", "text")
    list_filter = ("room",)
    search_fields = ("author", "text")
    readonly_fields = ("event_id",)

    def delete_model(self, request: HttpRequest, obj: Message) -> None:
        _delete(obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        # Each through the service, in the order of the locks it takes (room, then id),
        # so that two selections deleted at once cannot wait for each other.
        for message_id in queryset.order_by("room", "pk").values_list("pk", flat=True):
            _delete(message_id)


def _delete(message_id: int) -> None:
    with contextlib.suppress(NotFound):  # deleted meanwhile by someone else: gone, as asked
        services.message_delete(message_id=message_id)

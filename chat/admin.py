from django.contrib import admin

from chat.models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin[Message]):
    list_display = ("id", "room", "author", "created", "text")
    list_filter = ("room",)
    search_fields = ("author", "text")
    readonly_fields = ("event_id",)

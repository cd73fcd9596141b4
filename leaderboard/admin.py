"""Boards and players in the Django admin. A save publishes the board's standings,
so that open pages show an edit at once."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from leaderboard import services
from leaderboard.models import Board, Player


class PlayerInline(admin.TabularInline[Player, Board]):
    model = Player
    fields = ("name", "score", "score_changed_at")
    readonly_fields = ("score_changed_at",)
    extra = 0


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin[Board]):
    list_display = ("id", "name", "created")
    search_fields = ("name",)
    inlines = [PlayerInline]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        services.board_publish(board_id=form.instance.pk)


@admin.register(Player)
class PlayerAdmin(admin.ModelAdmin[Player]):
    list_display = ("id", "name", "board", "score", "score_changed_at")
    list_filter = ("board",)
    search_fields = ("name",)
    readonly_fields = ("score_changed_at",)

    def save_model(self, request: HttpRequest, obj: Player, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.board_publish(board_id=obj.board_id)

    def delete_model(self, request: HttpRequest, obj: Player) -> None:
        super().delete_model(request, obj)
        services.board_publish(board_id=obj.board_id)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        boards = set(queryset.values_list("board_id", flat=True))
        super().delete_queryset(request, queryset)
        for board_id in sorted(boards):
            services.board_publish(board_id=board_id)

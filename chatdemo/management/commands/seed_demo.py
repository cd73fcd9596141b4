"""Create the demo data that `make run` relies on. Safe to run repeatedly."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from leaderboard import services as leaderboard_services


class Command(BaseCommand):
    help = "Create the demo data (the default leaderboard and its players) if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        board = leaderboard_services.default_board_ensure()
        self.stdout.write(f"demo data ready: leaderboard {board.pk} {board.name!r}")

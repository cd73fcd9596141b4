from __future__ import annotations

from django.apps import AppConfig


class LeaderboardConfig(AppConfig):
    name = "leaderboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from leaderboard.selectors import board_channels
        from leaderboard.services import board_snapshot
        from realtime import snapshots
        from realtime.channels import BOARD_PREFIX

        # Every board's channel carries its whole standings: the publisher snapshots it.
        snapshots.register(BOARD_PREFIX, board_snapshot, every=board_channels)

from __future__ import annotations

from django.db import models
from django.utils import timezone

from leaderboard.validation import NAME_MAX_LENGTH

# Rank order within a board: highest score first; a tie goes to whoever
# reached the score first, then to the older player.
RANK_ORDER = ["-score", "score_changed_at", "id"]


class Board(models.Model):
    """A leaderboard. Its ``update`` events go to ``realtime.channels.board_channel(board.pk)``."""

    name = models.CharField(max_length=NAME_MAX_LENGTH)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class Player(models.Model):
    """A player on one board. Rank: score desc, then who reached the score first, then id."""

    # No index of its own: leaderboard_player_rank starts with board.
    board = models.ForeignKey(
        Board, on_delete=models.CASCADE, related_name="players", db_index=False
    )
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    score = models.BigIntegerField(default=0)
    # Set by the database's clock whenever the score changes, so that ties go
    # to whoever reached the score first, whichever app process served them.
    score_changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = RANK_ORDER
        indexes = [
            # Serves the standings query: one board's players in rank order.
            models.Index(fields=["board", *RANK_ORDER], name="leaderboard_player_rank")
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(score__gte=0), name="leaderboard_player_score_gte_0"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.score}"

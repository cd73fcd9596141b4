"""Fixtures for the leaderboard tests."""

from __future__ import annotations

import pytest
from django.test import TestCase

from leaderboard import services
from leaderboard.models import Board, Player
from realtime.models import Channel, Event

PLAYERS = ["Ann", "Bob", "Cleo"]


@pytest.fixture
def board(db: None) -> Board:
    """A board with Ann, Bob and Cleo at 0 (its first ``update`` is stored, not published)."""
    return services.board_create(name="Test board", players=PLAYERS)


def players_of(board: Board) -> dict[str, Player]:
    return {p.name: p for p in board.players.all()}


def scores(board: Board) -> dict[str, int]:
    return {p.name: p.score for p in board.players.all()}


def stored_state() -> tuple[list[tuple[str, int, int]], list[tuple[str, str, int]], list]:
    """Everything a write could change: scores, stored events, channel counters."""
    return (
        sorted(Player.objects.values_list("name", "board_id", "score")),
        sorted(Event.objects.values_list("channel__name", "type", "seq")),
        sorted(Channel.objects.values_list("name", "last_id")),
    )


def click(board: Board, player: Player) -> Player:
    """``score_add`` as if its transaction committed: the coalesced update is stored and published.

    Inside a test's transaction, on-commit callbacks run only when captured.
    """
    with TestCase.captureOnCommitCallbacks(execute=True):
        return services.score_add(board_id=board.pk, player_id=player.pk)

"""Fixtures for the leaderboard tests."""

from __future__ import annotations

import pytest

from leaderboard import services
from leaderboard.models import Board, Player
from realtime.channels import board_channel
from realtime.models import Channel, Event
from tests.conftest import Drain

PLAYERS = ["Ann", "Bob", "Cleo"]


@pytest.fixture
def board(db: None, published: Drain) -> Board:
    """A board with Ann, Bob and Cleo at 0 (its first ``update`` is stored and published)."""
    created = services.board_create(name="Test board", players=PLAYERS)
    published()
    return created


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
    """``score_add``, then the snapshot that the publisher takes after it: the update is stored."""
    clicked = services.score_add(board_id=board.pk, player_id=player.pk)
    services.board_snapshot(board_channel(board.pk))
    return clicked

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from base.errors import NotFound
from leaderboard import selectors
from leaderboard.models import Board, Player
from tests.leaderboard.conftest import players_of

pytestmark = pytest.mark.django_db


def test_board_standings_rank_by_score_then_who_reached_it_first_then_id(board: Board) -> None:
    players = players_of(board)
    now = timezone.now()
    # Bob and Cleo tie at 5; Cleo got there first. Ann leads.
    Player.objects.filter(pk=players["Ann"].pk).update(score=9, score_changed_at=now)
    Player.objects.filter(pk=players["Bob"].pk).update(score=5, score_changed_at=now)
    Player.objects.filter(pk=players["Cleo"].pk).update(
        score=5, score_changed_at=now - datetime.timedelta(seconds=1)
    )
    late = Player.objects.create(board=board, name="Dan", score=5, score_changed_at=now)
    assert selectors.board_standings(board_id=board.pk) == {
        "players": [
            {"id": players["Ann"].pk, "name": "Ann", "score": 9},
            {"id": players["Cleo"].pk, "name": "Cleo", "score": 5},
            {"id": players["Bob"].pk, "name": "Bob", "score": 5},  # same time as Dan, older id
            {"id": late.pk, "name": "Dan", "score": 5},
        ]
    }


def test_board_standings_only_that_board(board: Board) -> None:
    other = Board.objects.create(name="Other")
    Player.objects.create(board=other, name="Zed", score=100)
    assert [p["name"] for p in selectors.board_standings(board_id=board.pk)["players"]] == [
        "Ann",
        "Bob",
        "Cleo",
    ]


def test_board_standings_top_n(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selectors, "STANDINGS_LIMIT", 2)
    big = Board.objects.create(name="Big")
    for score, name in enumerate(["low", "mid", "high"]):
        Player.objects.create(board=big, name=name, score=score)
    assert [p["name"] for p in selectors.board_standings(board_id=big.pk)["players"]] == [
        "high",
        "mid",
    ]


def test_board_standings_unknown_board_is_empty() -> None:
    assert selectors.board_standings(board_id=123456) == {"players": []}


def test_player_payload_shape(board: Board) -> None:
    ann = players_of(board)["Ann"]
    assert selectors.player_payload(ann) == {"id": ann.pk, "name": "Ann", "score": 0}


def test_board_get_unknown_is_not_found() -> None:
    with pytest.raises(NotFound) as error:
        selectors.board_get(board_id=123456)
    assert error.value.field == "board"


def test_player_get_names_the_wrong_id(board: Board) -> None:
    ann = players_of(board)["Ann"]
    other = Board.objects.create(name="Other")
    assert selectors.player_get(board_id=board.pk, player_id=ann.pk) == ann
    with pytest.raises(NotFound) as on_other_board:
        selectors.player_get(board_id=other.pk, player_id=ann.pk)
    assert on_other_board.value.field == "player"
    with pytest.raises(NotFound) as unknown_board:
        selectors.player_get(board_id=123456, player_id=ann.pk)
    assert unknown_board.value.field == "board"


def test_default_board_is_the_oldest() -> None:
    assert selectors.default_board() is None
    first = Board.objects.create(name="First")
    Board.objects.create(name="Second")
    assert selectors.default_board() == first

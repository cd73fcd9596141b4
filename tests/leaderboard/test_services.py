from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import pytest
from django.db import connection, transaction

from base.errors import InvalidField, NotFound
from leaderboard import selectors, services
from leaderboard.models import Board, Player
from realtime.channels import board_channel
from realtime.models import Channel, Event
from tests.conftest import Drain
from tests.leaderboard.conftest import PLAYERS, click, players_of, scores, stored_state

pytestmark = pytest.mark.django_db


def channel(board: Board) -> str:
    return f"board-{board.pk}"


def stored_updates(board: Board) -> list[tuple[int, Any]]:
    """(event id, standings) of the board's stored ``update`` events, oldest first."""
    events = Event.objects.filter(channel__name=channel(board), type="update").order_by("seq")
    return [(e.seq, e.data) for e in events]


def test_score_add_adds_one_and_the_publisher_publishes_the_standings(
    board: Board, published: Drain
) -> None:
    bob = players_of(board)["Bob"]
    published()  # the board's first update
    player = services.score_add(board_id=board.pk, player_id=bob.pk)
    assert (player.pk, player.score) == (bob.pk, 1)
    assert player.score_changed_at > bob.score_changed_at
    assert scores(board) == {"Ann": 0, "Bob": 1, "Cleo": 0}
    sent = published()
    assert sent == [(channel(board), "update", selectors.board_standings(board_id=board.pk))]
    assert sent[0][2]["players"][0] == {"id": bob.pk, "name": "Bob", "score": 1}


def test_score_add_commits_the_score_alone_and_the_snapshot_stores_the_update(
    board: Board, published: Drain
) -> None:
    ann = players_of(board)["Ann"]
    services.score_add(board_id=board.pk, player_id=ann.pk)
    # The click holds no channel lock and stores no event: the publisher's snapshot does.
    assert [eid for eid, _ in stored_updates(board)] == [1]
    published()
    services.score_add(board_id=board.pk, player_id=ann.pk)
    published()
    assert [(eid, s["players"][0]["score"]) for eid, s in stored_updates(board)] == [
        (1, 0),  # the board's first update, stored by board_create
        (2, 1),
        (3, 2),
    ]


def test_score_add_rolled_back_publishes_nothing(board: Board, published: Drain) -> None:
    ann = players_of(board)["Ann"]
    before = stored_state()
    with (
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.score_add(board_id=board.pk, player_id=ann.pk)
        raise RuntimeError("roll back")
    assert published() == []
    assert stored_state() == before


def test_score_add_tie_goes_to_who_reached_the_score_first(board: Board, published: Drain) -> None:
    players = players_of(board)
    services.score_add(board_id=board.pk, player_id=players["Cleo"].pk)
    services.score_add(board_id=board.pk, player_id=players["Bob"].pk)
    assert [p["name"] for p in selectors.board_standings(board_id=board.pk)["players"]] == [
        "Cleo",
        "Bob",
        "Ann",
    ]
    services.score_add(board_id=board.pk, player_id=players["Bob"].pk)
    assert [p["name"] for p in selectors.board_standings(board_id=board.pk)["players"]] == [
        "Bob",
        "Cleo",
        "Ann",
    ]


@pytest.mark.parametrize("which", ["unknown player", "player of another board", "unknown board"])
def test_score_add_bad_ids_raise_not_found_and_change_nothing(
    board: Board, published: Drain, which: str
) -> None:
    other = services.board_create(name="Other", players=["Zed"])
    published()  # its first update
    zed = players_of(other)["Zed"]
    board_id, player_id, field = {
        "unknown player": (board.pk, 10**12, "player"),
        "player of another board": (board.pk, zed.pk, "player"),
        "unknown board": (10**12, zed.pk, "board"),
    }[which]
    before = stored_state()
    with pytest.raises(NotFound) as error:
        services.score_add(board_id=board_id, player_id=player_id)
    assert error.value.field == field
    assert stored_state() == before  # not even a counter for the unknown board's channel
    assert published() == []


@pytest.mark.django_db(transaction=True)
def test_score_add_concurrent_clicks_are_all_counted(published: Drain) -> None:
    """Real PostgreSQL connections in threads: the increment loses no click, and snapshots
    taken while clicks commit (as the publisher takes them) never go down."""
    board = services.board_create(name="Busy", players=["Ann", "Bob"])
    ann, bob = players_of(board)["Ann"], players_of(board)["Bob"]
    threads, clicks = 8, 25
    clicking = threading.Event()
    clicking.set()

    def click(n: int) -> None:
        try:
            for i in range(clicks):
                target = ann if (n + i) % 2 else bob
                services.score_add(board_id=board.pk, player_id=target.pk)
        finally:
            connection.close()

    def snapshots() -> None:
        try:
            while clicking.is_set():
                services.board_snapshot(board_channel(board.pk))
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=threads + 1) as pool:
        taker = pool.submit(snapshots)
        list(pool.map(click, range(threads)))
        clicking.clear()
        taker.result()
    services.board_snapshot(board_channel(board.pk))
    assert sum(scores(board).values()) == threads * clicks
    # Clicks that commit while a snapshot is being taken share the next one, so
    # there may be fewer updates than clicks; in id order no total goes down,
    # and the last update is what the database holds.
    totals = [sum(p["score"] for p in s["players"]) for _, s in stored_updates(board)]
    assert totals == sorted(totals)
    assert totals[0] == 0 and totals[-1] == threads * clicks
    assert len(set(totals)) == len(totals), "no update repeats the one before"
    assert stored_updates(board)[-1][1] == selectors.board_standings(board_id=board.pk)


def test_board_create_stores_players_in_order_and_a_first_update(published: Drain) -> None:
    board = services.board_create(name=" Office ", players=["Cleo", "Ann", "Bob"])
    assert board.name == "Office"
    assert [p["name"] for p in selectors.board_standings(board_id=board.pk)["players"]] == [
        "Cleo",
        "Ann",
        "Bob",
    ]
    standings = selectors.board_standings(board_id=board.pk)
    assert published() == [(channel(board), "update", standings)]
    assert stored_updates(board) == [(1, standings)]


@pytest.mark.parametrize(
    ("name", "players", "field"),
    [("", PLAYERS, "name"), ("Board", [], "players"), ("Board", ["Ann", "Ann"], "players")],
)
def test_board_create_invalid_stores_nothing(
    published: Drain, name: str, players: list[str], field: str
) -> None:
    with pytest.raises(InvalidField) as error:
        services.board_create(name=name, players=players)
    assert error.value.field == field
    assert stored_state() == ([], [], [])
    assert not Board.objects.exists()


def test_board_reset_zeroes_scores_and_publishes(board: Board, published: Drain) -> None:
    players = players_of(board)
    for name in ("Cleo", "Cleo", "Bob"):
        click(board, players[name])
    published()
    services.board_reset(board_id=board.pk)
    assert scores(board) == {"Ann": 0, "Bob": 0, "Cleo": 0}
    # All reset in one statement: the same time, so the tie goes to the older player.
    assert len({p.score_changed_at for p in board.players.all()}) == 1
    standings = selectors.board_standings(board_id=board.pk)
    assert [p["name"] for p in standings["players"]] == ["Ann", "Bob", "Cleo"]
    assert published() == [(channel(board), "update", standings)]
    assert stored_updates(board)[-1] == (5, standings)


def test_board_reset_unknown_board_changes_nothing(board: Board, published: Drain) -> None:
    before = stored_state()
    with pytest.raises(NotFound) as error:
        services.board_reset(board_id=10**12)
    assert error.value.field == "board"
    assert stored_state() == before


def test_board_publish_stores_a_fresh_update(board: Board, published: Drain) -> None:
    Player.objects.filter(board=board, name="Ann").update(score=7)  # as the admin would
    assert services.board_publish(board_id=board.pk) == 2
    assert stored_updates(board)[-1] == (2, selectors.board_standings(board_id=board.pk))
    assert stored_updates(board)[-1][1]["players"][0]["score"] == 7


def test_board_refresh_stores_nothing_when_the_latest_update_is_current(
    board: Board, published: Drain
) -> None:
    before = stored_state()
    assert services.board_refresh(board_id=board.pk) is None
    assert stored_state() == before


def test_board_refresh_stores_a_committed_score_whose_update_never_came(
    board: Board, published: Drain
) -> None:
    # A click committed, but its coalesced update never ran (say, the process stopped).
    Player.objects.filter(board=board, name="Cleo").update(score=2)
    assert services.board_refresh(board_id=board.pk) == 2
    standings = selectors.board_standings(board_id=board.pk)
    assert standings["players"][0] == {
        "id": players_of(board)["Cleo"].pk,
        "name": "Cleo",
        "score": 2,
    }
    assert stored_updates(board)[-1] == (2, standings)
    assert published() == [(channel(board), "update", standings)]
    assert services.board_refresh(board_id=board.pk) is None  # and only once


def test_board_publish_unknown_board_changes_nothing(published: Drain) -> None:
    with pytest.raises(NotFound):
        services.board_publish(board_id=10**12)
    assert stored_state() == ([], [], [])


def test_default_board_ensure_creates_one_board_with_five_players_once(published: Drain) -> None:
    first = services.default_board_ensure()
    again = services.default_board_ensure()
    assert first == again
    assert Board.objects.count() == 1
    assert [p.name for p in first.players.order_by("id")] == list(services.DEFAULT_PLAYERS)
    assert len(services.DEFAULT_PLAYERS) == 5
    assert Channel.objects.get(name=channel(first)).last_id == 1

"""The leaderboard end to end: real Pushpin, the app under granian, PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import datetime
import itertools
from typing import Any

import httpx
import pytest
from django.db import transaction
from django.utils import timezone

from devstack.processes import wait_until
from devstack.servers import AppServer
from devstack.sse import SSEEvent, Subscriber
from leaderboard import selectors, services
from leaderboard.models import Board
from realtime import log
from realtime.models import Event
from tests.conftest import Stack
from tests.leaderboard.conftest import players_of, stored_state

pytestmark = pytest.mark.integration

CLIENTS = 20
CLICKS_EACH = 50


@pytest.fixture
def board(live_db: Stack) -> Board:
    """A committed board with five players; its first update went to the stack's Pushpin."""
    with transaction.atomic():
        return services.board_create(name="Live", players=["Ann", "Bob", "Cleo", "Dan", "Eve"])


def path(board: Board) -> str:
    return f"/boards/{board.pk}/"


def standings(board: Board) -> dict[str, Any]:
    return selectors.board_standings(board_id=board.pk)


def updates(sub: Subscriber) -> list[SSEEvent]:
    return sub.of_type("update")


def numbers(sub: Subscriber) -> list[int]:
    """The event numbers of the updates received (ids look like ``board-7:42``)."""
    return [int((e.id or "").rpartition(":")[2]) for e in updates(sub)]


def click(client: httpx.Client, board: Board, player_id: int) -> dict[str, Any]:
    response = client.post(f"/boards/{board.pk}/players/{player_id}/score-add/")
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_standings(sub: Subscriber, expected: dict[str, Any], timeout: float = 10) -> None:
    sub.wait_for(
        lambda s: bool(updates(s)) and updates(s)[-1].json() == expected,
        timeout=timeout,
        what=f"the standings {expected}",
    )


def latest_id(board: Board) -> int:
    """The id of the board's latest stored ``update``."""
    return log.current_id(f"board-{board.pk}")


def assert_never_goes_down(sub: Subscriber) -> None:
    """Each update once, in event order, and no player's score ever drops."""
    assert numbers(sub) == sorted(set(numbers(sub)))
    seen: dict[int, int] = {}
    for event in updates(sub):
        for player in event.json()["players"]:
            assert player["score"] >= seen.get(player["id"], 0), f"a score went down in {event}"
            seen[player["id"]] = player["score"]


def test_concurrent_clicks_are_counted_exactly_and_every_subscriber_converges(
    live_db: Stack, board: Board, subscribers: list
) -> None:
    subs = [live_db.subscribe(path(board)) for _ in range(3)]
    subscribers.extend(subs)
    for sub in subs:
        sub.wait_count("update", 1)  # the current standings, at once
    players = list(players_of(board).values())

    def clicker(n: int) -> None:
        with httpx.Client(base_url=live_db.url, timeout=30) as client:
            for i in range(CLICKS_EACH):
                click(client, board, players[(n + i) % len(players)].pk)

    with concurrent.futures.ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(clicker, range(CLIENTS)))

    final = standings(board)
    assert sum(p["score"] for p in final["players"]) == CLIENTS * CLICKS_EACH
    for sub in subs:
        wait_for_standings(sub, final, timeout=60)
        assert_never_goes_down(sub)
        # Coalesced: clicks that come within the app's snapshot interval share
        # one update, none repeating the standings before it, and the last one
        # is the latest stored.
        assert numbers(sub)[-1] == latest_id(board)
        totals = [sum(p["score"] for p in e.json()["players"]) for e in updates(sub)]
        assert all(a < b for a, b in itertools.pairwise(totals))
        assert len(totals) < CLIENTS * CLICKS_EACH / 2, "clicks were not coalesced"


def test_subscriber_gets_the_latest_update_first_then_the_current_standings(
    live_db: Stack, board: Board, client_http: httpx.Client, subscribers: list
) -> None:
    """The stream only reads: it starts from the latest stored update, which may not hold
    the last clicks yet; their coalesced update follows, and nothing goes back."""
    ann = players_of(board)["Ann"]
    for _ in range(3):
        click(client_http, board, ann.pk)
    connected_at = latest_id(board)
    sub = live_db.subscribe(path(board))
    subscribers.append(sub)
    wait_for_standings(sub, standings(board))
    # The latest stored when it connected (or a later one), then each one after it: a
    # snapshot or two may have been pending when it connected, on a busy box.
    assert numbers(sub)[0] >= connected_at
    assert numbers(sub) == list(range(numbers(sub)[0], latest_id(board) + 1))
    click(client_http, board, ann.pk)
    wait_for_standings(sub, standings(board))
    assert numbers(sub)[-1] == latest_id(board)
    assert_never_goes_down(sub)


def test_reconnecting_subscriber_gets_the_latest_standings_not_the_missed_ones(
    live_db: Stack, board: Board, client_http: httpx.Client, subscribers: list
) -> None:
    players = players_of(board)
    first = live_db.subscribe(path(board))
    subscribers.append(first)
    [seen] = first.wait_count("update", 1)
    first.close()
    for name in ("Bob", "Bob", "Cleo"):  # missed while away
        click(client_http, board, players[name].pk)
    wait_until(
        lambda: log.latest_data(f"board-{board.pk}") == standings(board),
        timeout=10,
        what="the missed clicks' update",
    )

    again = live_db.subscribe(path(board), {"Last-Event-ID": seen.id or ""})
    subscribers.append(again)
    [current] = again.wait_count("update", 1)
    assert current.json() == standings(board)  # not the missed states one by one
    assert numbers(again) == [latest_id(board)]
    click(client_http, board, players["Eve"].pk)
    wait_for_standings(again, standings(board))
    assert numbers(again) == [latest_id(board) - 1, latest_id(board)]
    assert again.of_type("stream-reset") == []


def test_reconnecting_subscriber_that_is_up_to_date_gets_no_repeat(
    live_db: Stack, board: Board, client_http: httpx.Client, subscribers: list
) -> None:
    sub = live_db.subscribe(path(board), {"Last-Event-ID": f"board-{board.pk}:1"})
    subscribers.append(sub)
    sub.wait_open()
    click(client_http, board, players_of(board)["Dan"].pk)
    wait_for_standings(sub, standings(board))
    assert numbers(sub) == [2]


def test_subscriber_after_events_expired_gets_the_current_standings(
    live_db: Stack, board: Board, client_http: httpx.Client, subscribers: list
) -> None:
    click(client_http, board, players_of(board)["Ann"].pk)
    wait_until(lambda: latest_id(board) == 2, timeout=10, what="the click's update")
    Event.objects.update(created=timezone.now() - log.retention() - datetime.timedelta(hours=1))
    assert log.trim() >= 1  # every event of the board but its latest
    sub = live_db.subscribe(path(board), {"Last-Event-ID": f"board-{board.pk}:1"})
    subscribers.append(sub)
    [current] = sub.wait_count("update", 1)
    assert current.json() == standings(board)
    assert sub.of_type("stream-reset") == []
    click(client_http, board, players_of(board)["Ann"].pk)
    wait_for_standings(sub, standings(board))
    assert_never_goes_down(sub)


def test_bad_ids_get_404_and_change_nothing(
    live_db: Stack, board: Board, client_http: httpx.Client, subscribers: list
) -> None:
    sub = live_db.subscribe(path(board))
    subscribers.append(sub)
    sub.wait_count("update", 1)
    ann = players_of(board)["Ann"]
    before = stored_state()
    for method, url, field in [
        ("POST", f"/boards/{board.pk}/players/999999999/score-add/", "player"),
        ("POST", f"/boards/999999999/players/{ann.pk}/score-add/", "board"),
        ("POST", f"/boards/abc/players/{ann.pk}/score-add/", "board"),
        ("POST", f"/boards/{board.pk}/players/-1/score-add/", "player"),
        ("GET", "/boards/999999999/", "board"),
        ("GET", "/boards/abc/", "board"),
        ("GET", f"/boards/{board.pk}/players/999999999/", "player"),
    ]:
        response = client_http.request(method, url)
        assert response.status_code == 404, url
        assert response.json() == {"error": f"no such {field}", "field": field}
    stream = client_http.get("/boards/999999999/", headers={"Accept": "text/event-stream"})
    assert (stream.status_code, stream.json()["field"]) == (404, "board")
    assert stored_state() == before
    # A good click after the bad ones is the very next update: none came between.
    click(client_http, board, ann.pk)
    wait_for_standings(sub, standings(board))
    assert numbers(sub) == [1, 2]


def test_wrong_method_gets_405(board: Board, client_http: httpx.Client) -> None:
    ann = players_of(board)["Ann"]
    before = stored_state()
    response = client_http.get(f"/boards/{board.pk}/players/{ann.pk}/score-add/")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")
    response = client_http.post(f"/boards/{board.pk}/")
    assert (response.status_code, response.headers["allow"]) == (405, "GET, HEAD")
    assert response.json()["error"] == "method POST not allowed"
    assert stored_state() == before


def test_json_through_pushpin_is_answered_not_held(board: Board, client_http: httpx.Client) -> None:
    response = client_http.get(path(board), headers={"Accept": "*/*"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == standings(board)
    player = players_of(board)["Eve"]
    response = client_http.get(f"/boards/{board.pk}/players/{player.pk}/")
    assert response.json() == {"id": player.pk, "name": "Eve", "score": 0}


def test_direct_stream_without_proxy(
    direct_app: AppServer, board: Board, subscribers: list
) -> None:
    """With no proxy configured, the app streams the standings itself over ASGI (the session's
    publisher takes the snapshots)."""
    sub = Subscriber(f"{direct_app.url}{path(board)}")
    subscribers.append(sub)
    [first] = sub.wait_count("update", 1)
    assert first.json() == standings(board)
    with httpx.Client(base_url=direct_app.url, timeout=10) as client:
        click(client, board, players_of(board)["Cleo"].pk)
    wait_for_standings(sub, standings(board))
    assert numbers(sub) == [1, 2]

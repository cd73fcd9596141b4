from __future__ import annotations

import io
import json
import re
import time

import jwt
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from devstack.pushpin import PUSHPIN_CONF, read_config
from leaderboard import selectors, services
from leaderboard.models import Board, Player
from realtime import log
from tests.conftest import Drain
from tests.leaderboard.conftest import click, players_of, scores, stored_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> Client:
    # enforce_csrf_checks: the API must work for clients with no session or token.
    return Client(enforce_csrf_checks=True)


def proxied() -> dict[str, str]:
    """Headers of a request that came through Pushpin (its signed Grip-Sig)."""
    conf = read_config(PUSHPIN_CONF)
    claims = {"iss": conf.get("proxy", "sig_iss"), "exp": int(time.time()) + 60}
    return {"HTTP_GRIP_SIG": jwt.encode(claims, conf.get("proxy", "sig_key"), algorithm="HS256")}


# --- JSON API -----------------------------------------------------------------


def test_api_paths_answer_the_same_without_their_trailing_slash(
    api: Client, board: Board, published: list
) -> None:
    """The original client posts score-add without the slash; APPEND_SLASH cannot redirect a POST."""
    ann = players_of(board)["Ann"]
    player = f"/boards/{board.pk}/players/{ann.pk}"
    clicked = api.post(f"{player}/score-add")
    assert (clicked.status_code, clicked.json()) == (200, {"id": ann.pk, "name": "Ann", "score": 1})
    assert api.get(player).json() == api.get(f"{player}/").json() == clicked.json()
    assert api.get(f"/boards/{board.pk}").json() == api.get(f"/boards/{board.pk}/").json()
    assert scores(board)["Ann"] == 1


def test_api_path_without_slash_wrong_method_is_405_not_500(api: Client, board: Board) -> None:
    ann = players_of(board)["Ann"]
    response = api.get(f"/boards/{board.pk}/players/{ann.pk}/score-add")
    assert response.status_code == 405
    assert response.json()["error"] == "method GET not allowed"


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html, */*;q=0.8"])
def test_board_get_answers_json_unless_the_stream_is_asked_for(
    api: Client, board: Board, accept: str | None
) -> None:
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = api.get(f"/boards/{board.pk}/", **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Vary"] == "Accept"
    assert response.json() == selectors.board_standings(board_id=board.pk)
    assert [p["name"] for p in response.json()["players"]] == ["Ann", "Bob", "Cleo"]


def test_player_get_returns_player_json(api: Client, board: Board) -> None:
    bob = players_of(board)["Bob"]
    response = api.get(f"/boards/{board.pk}/players/{bob.pk}/")
    assert response.status_code == 200
    assert response.json() == {"id": bob.pk, "name": "Bob", "score": 0}


def test_score_add_post_adds_one_and_returns_player_json(
    api: Client, board: Board, published: Drain
) -> None:
    cleo = players_of(board)["Cleo"]
    response = api.post(f"/boards/{board.pk}/players/{cleo.pk}/score-add/")
    assert response.status_code == 200
    assert response.json() == {"id": cleo.pk, "name": "Cleo", "score": 1}
    assert scores(board) == {"Ann": 0, "Bob": 0, "Cleo": 1}
    assert published() == [
        (f"board-{board.pk}", "update", selectors.board_standings(board_id=board.pk))
    ]


BAD_PATHS = [
    # (path template, field): {b} is the board, {p} a player on it, {o} a player elsewhere
    ("/boards/abc/", "board"),
    ("/boards/0/", "board"),
    ("/boards/-1/", "board"),
    ("/boards/1.0/", "board"),
    ("/boards/99999999999999999999/", "board"),
    ("/boards/999999999/", "board"),
    ("/boards/abc/players/{p}/", "board"),
    ("/boards/{b}/players/abc/", "player"),
    ("/boards/{b}/players/999999999/", "player"),
    ("/boards/{b}/players/{o}/", "player"),
    ("/boards/999999999/players/{p}/", "board"),
]


@pytest.mark.parametrize(("template", "field"), BAD_PATHS)
@pytest.mark.parametrize("action", ["get", "score-add"])
def test_bad_ids_are_json_404_naming_the_id_and_change_nothing(
    api: Client, board: Board, published: Drain, template: str, field: str, action: str
) -> None:
    other = services.board_create(name="Other", players=["Zed"])
    published()  # its first update
    path = template.format(b=board.pk, p=players_of(board)["Ann"].pk, o=players_of(other)["Zed"].pk)
    if action == "score-add":
        if "/players/" not in path:
            path += f"players/{players_of(board)['Ann'].pk}/"
        path += "score-add/"
    before = stored_state()
    response = api.post(path) if action == "score-add" else api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": f"no such {field}", "field": field}
    assert stored_state() == before
    assert published() == []


def test_bad_board_id_with_stream_accept_is_json_404(api: Client) -> None:
    response = api.get("/boards/999999999/", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 404
    assert response.json() == {"error": "no such board", "field": "board"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/boards/{b}/", "GET, HEAD"),
        ("delete", "/boards/{b}/", "GET, HEAD"),
        ("post", "/boards/{b}/players/{p}/", "GET, HEAD"),
        ("get", "/boards/{b}/players/{p}/score-add/", "POST"),
        ("put", "/boards/{b}/players/{p}/score-add/", "POST"),
    ],
)
def test_wrong_method_is_json_405_and_changes_nothing(
    api: Client, board: Board, published: Drain, method: str, path: str, allowed: str
) -> None:
    path = path.format(b=board.pk, p=players_of(board)["Ann"].pk)
    before = stored_state()
    response = getattr(api, method)(path)
    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert response.json() == {
        "error": f"method {method.upper()} not allowed",
        "field": "method",
        "allowed": allowed.split(", "),
    }
    assert stored_state() == before


# --- the stream (GRIP instructions; the stream itself is in test_integration) -------


@pytest.mark.parametrize(
    "accept",
    ["text/event-stream", "application/json;q=0.5, text/event-stream", "TEXT/Event-Stream"],
)
def test_board_stream_through_proxy_replays_the_latest_update_then_holds(
    api: Client, board: Board, published: Drain, accept: str
) -> None:
    ann = players_of(board)["Ann"]
    for _ in range(3):
        click(board, ann)
    response = api.get(f"/boards/{board.pk}/", HTTP_ACCEPT=accept, **proxied())
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Grip-Hold"] == "stream"
    # Held from the latest event: the next publish (prev-id 4) follows on.
    assert response["Grip-Channel"].startswith(f"events-board-{board.pk}; prev-id=4")
    body = response.content.decode()
    standings = selectors.board_standings(board_id=board.pk)
    assert standings["players"][0] == {"id": ann.pk, "name": "Ann", "score": 3}
    assert body.endswith(
        f"event: stream-open\ndata:\n\n"
        f"event: update\nid: board-{board.pk}:4\ndata: {json.dumps(standings)}\n\n"
    )


def writes(queries: CaptureQueriesContext) -> list[str]:
    """The statements among ``queries`` that write or lock."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if re.search(r"\b(INSERT|UPDATE|DELETE|FOR UPDATE|FOR SHARE|pg_notify)\b", q["sql"])
    ]


def test_board_stream_connect_reads_only_and_the_pending_update_follows(
    api: Client, board: Board, published: Drain
) -> None:
    """A click committed, its coalesced update still to come: a client that connects gets the
    latest stored update (never a newer state than the stream will carry next), and nothing
    is written or locked on its behalf; the publisher's snapshot then follows as the next id."""
    Player.objects.filter(board=board, name="Bob").update(score=5)
    before = selectors.board_shown(board_id=board.pk)
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"/boards/{board.pk}/", HTTP_ACCEPT="text/event-stream", **proxied())
    assert writes(queries) == []
    assert response.content.decode().endswith(
        f"event: update\nid: board-{board.pk}:1\ndata: {json.dumps(before)}\n\n"
    )
    assert response["Grip-Channel"].startswith(f"events-board-{board.pk}; prev-id=1")
    assert published() == [
        (f"board-{board.pk}", "update", selectors.board_standings(board_id=board.pk))
    ]
    assert log.current_id(f"board-{board.pk}") == 2


def test_board_stream_client_that_has_the_latest_gets_no_replay(
    api: Client, board: Board, published: Drain
) -> None:
    response = api.get(
        f"/boards/{board.pk}/",
        HTTP_ACCEPT="text/event-stream",
        HTTP_LAST_EVENT_ID=f"board-{board.pk}:1",
        **proxied(),
    )
    assert "event: update" not in response.content.decode()
    assert response["Grip-Channel"].startswith(f"events-board-{board.pk}; prev-id=1")


@pytest.mark.parametrize(
    "last_event_id",
    [
        "board-{b}:2",  # behind: the current standings, not the missed ones
        "board-{b}:99",  # never issued by this database (say, it was reset)
        "room-lobby:3",  # another channel's id
    ],
)
def test_board_stream_client_not_at_the_latest_gets_only_the_latest(
    api: Client, board: Board, published: Drain, last_event_id: str
) -> None:
    ann = players_of(board)["Ann"]
    for _ in range(3):
        click(board, ann)
    response = api.get(
        f"/boards/{board.pk}/",
        HTTP_ACCEPT="text/event-stream",
        HTTP_LAST_EVENT_ID=last_event_id.format(b=board.pk),
        **proxied(),
    )
    body = response.content.decode()
    assert re.findall(r"^id: (.*)$", body, re.MULTILINE) == [f"board-{board.pk}:4"]
    assert "stream-reset" not in body


def test_board_stream_next_link_request_keeps_pushpins_position(
    api: Client, board: Board, published: Drain
) -> None:
    ann = players_of(board)["Ann"]
    for _ in range(3):
        click(board, ann)
    first = api.get(f"/boards/{board.pk}/", HTTP_ACCEPT="text/event-stream", **proxied())
    link = first["Grip-Link"].split(">")[0].lstrip("<")
    assert "link=next" in link
    # Pushpin asks for what came after event 2 (no Accept header of its own).
    response = api.get(link, HTTP_GRIP_LAST=f"events-board-{board.pk}; last-id=2", **proxied())
    body = response.content.decode()
    # Everything after Pushpin's position, not just the latest.
    assert re.findall(r"^id: (.*)$", body, re.MULTILINE) == [
        f"board-{board.pk}:3",
        f"board-{board.pk}:4",
    ]
    assert "stream-open" not in body


def test_board_stream_next_link_request_reads_only(
    api: Client, board: Board, published: Drain
) -> None:
    """Pushpin's recovery requests read the log; the state a click changed reaches the
    stream as the publisher's snapshot, at the next recovery at the latest."""
    first = api.get(f"/boards/{board.pk}/", HTTP_ACCEPT="text/event-stream", **proxied())
    link = first["Grip-Link"].split(">")[0].lstrip("<")
    Player.objects.filter(board=board, name="Cleo").update(score=4)
    grip_last = {"HTTP_GRIP_LAST": f"events-board-{board.pk}; last-id=1"}
    with CaptureQueriesContext(connection) as queries:
        unchanged = api.get(link, **grip_last, **proxied())
    assert writes(queries) == []
    assert "event: update" not in unchanged.content.decode()
    published()  # the publisher's coalesced snapshot of the click
    response = api.get(link, **grip_last, **proxied())
    standings = selectors.board_standings(board_id=board.pk)
    assert standings["players"][0]["name"] == "Cleo"
    assert response.content.decode().endswith(
        f"event: update\nid: board-{board.pk}:2\ndata: {json.dumps(standings)}\n\n"
    )


def test_board_stream_after_trim_replays_the_kept_latest_event(
    api: Client, board: Board, published: Drain
) -> None:
    import datetime

    from django.utils import timezone

    from realtime.models import Event

    services.board_reset(board_id=board.pk)
    services.board_publish(board_id=board.pk)
    long_ago = timezone.now() - log.retention() - datetime.timedelta(hours=1)
    Event.objects.update(created=long_ago)
    assert log.trim() == 2
    response = api.get(f"/boards/{board.pk}/", HTTP_ACCEPT="text/event-stream", **proxied())
    body = response.content.decode()
    assert "stream-reset" not in body
    assert body.count("event: update") == 1
    assert f"id: board-{board.pk}:3\n" in body
    assert response["Grip-Channel"].startswith(f"events-board-{board.pk}; prev-id=3")


@pytest.mark.parametrize("last_event_id", [None, "board-{b}:0"])
def test_board_stream_board_without_events_waits_for_the_publishers_first_update(
    api: Client, published: Drain, last_event_id: str | None
) -> None:
    bare = Board.objects.create(name="Made without the services")
    Player.objects.create(board=bare, name="Ann", score=2)
    headers = {"HTTP_LAST_EVENT_ID": last_event_id.format(b=bare.pk)} if last_event_id else {}
    with CaptureQueriesContext(connection) as queries:
        response = api.get(
            f"/boards/{bare.pk}/", HTTP_ACCEPT="text/event-stream", **headers, **proxied()
        )
    assert writes(queries) == []
    assert "event: update" not in response.content.decode()
    assert response["Grip-Channel"].startswith(f"events-board-{bare.pk}")
    # The publisher's sweep (at its start, then every REALTIME_SWEEP_SECONDS) stores it.
    assert published() == [
        (f"board-{bare.pk}", "update", selectors.board_standings(board_id=bare.pk))
    ]


# --- pages ---------------------------------------------------------------------


def test_leaderboard_redirects_to_the_default_board(client: Client, board: Board) -> None:
    services.board_create(name="Later", players=["Zed"])
    response = client.get("/leaderboard/")
    assert response.status_code == 302
    assert response["Location"] == f"/leaderboard/{board.pk}/"


def test_leaderboard_without_boards_says_how_to_make_one(client: Client) -> None:
    response = client.get("/leaderboard/")
    assert response.status_code == 404
    assert "leaderboard_board create" in response.content.decode()


def test_board_page_renders_standings_with_named_buttons(
    client: Client, board: Board, published: Drain
) -> None:
    Player.objects.filter(board=board, name="Cleo").update(score=4)
    published()  # the publisher's snapshot
    html = client.get(f"/leaderboard/{board.pk}/").content.decode()
    assert html.index(">Cleo<") < html.index(">Ann<") < html.index(">Bob<")
    for name in ("Ann", "Bob", "Cleo"):
        assert f'aria-label="+1 for {name}"' in html
    assert f'"boardUrl": "/boards/{board.pk}/"' in html
    assert "leaderboard/board.js" in html


def test_board_page_shows_what_its_stream_starts_with(
    client: Client, board: Board, published: Drain
) -> None:
    """A click whose update is still to come is not on the page yet: the stream's first
    update must never take the page back."""
    Player.objects.filter(board=board, name="Cleo").update(score=4)
    html = client.get(f"/leaderboard/{board.pk}/").content.decode()
    assert html.index(">Ann<") < html.index(">Bob<") < html.index(">Cleo<")
    published()
    html = client.get(f"/leaderboard/{board.pk}/").content.decode()
    assert html.index(">Cleo<") < html.index(">Ann<") < html.index(">Bob<")


def test_board_page_escapes_names(client: Client, published: Drain) -> None:
    board = services.board_create(name="<i>B</i>", players=["<img src=x onerror=alert(1)>"])
    html = client.get(f"/leaderboard/{board.pk}/").content.decode()
    assert "<img src=x" not in html
    assert "<i>B</i>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.parametrize("board_id", ["abc", "0", "999999999"])
def test_board_page_unknown_board_is_404(client: Client, board_id: str) -> None:
    assert client.get(f"/leaderboard/{board_id}/").status_code == 404


def test_home_links_to_leaderboard_and_chat(client: Client) -> None:
    html = client.get("/").content.decode()
    assert 'href="/leaderboard/"' in html
    assert 'href="/chat/"' in html


# --- management commands and admin ----------------------------------------------


def test_command_create_and_reset(published: Drain) -> None:
    out = io.StringIO()
    call_command("leaderboard_board", "create", "Office", "Ann", "Bob", stdout=out)
    board = Board.objects.get(name="Office")
    assert (
        out.getvalue()
        == f"created board {board.pk} 'Office' with 2 players: /leaderboard/{board.pk}/\n"
    )
    click(board, players_of(board)["Bob"])
    call_command("leaderboard_board", "reset", str(board.pk), stdout=out)
    assert scores(board) == {"Ann": 0, "Bob": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reset", "999999999"], "board: no such board"),
        (["reset", "abc"], "board: no such board"),
        (["create", "Office", "Ann", "Ann"], "players: must not repeat a name"),
    ],
)
def test_command_errors_name_the_field(published: Drain, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=f"^{message}$"):
        call_command("leaderboard_board", *args)
    assert not Board.objects.exists()


def test_seed_demo_creates_the_default_board_once(published: Drain) -> None:
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    [board] = Board.objects.all()
    assert board.players.count() == 5


def test_admin_player_edit_publishes_standings(board: Board, published: Drain) -> None:
    admin = Client()
    admin.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    bob = players_of(board)["Bob"]
    response = admin.post(
        f"/admin/leaderboard/player/{bob.pk}/change/",
        {"board": board.pk, "name": "Bob", "score": 12},
    )
    assert response.status_code == 302
    sent = published()
    assert sent == [(f"board-{board.pk}", "update", selectors.board_standings(board_id=board.pk))]
    assert sent[0][2]["players"][0] == {"id": bob.pk, "name": "Bob", "score": 12}


def test_board_stream_around_the_proxy_is_refused_before_it_writes(
    api: Client, board: Board, published: Drain
) -> None:
    """A client that does not come through the proxy cannot make the app store a snapshot."""
    Player.objects.filter(board=board, name="Cleo").update(score=4)
    before = stored_state()
    response = api.get(f"/boards/{board.pk}/", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 421
    assert stored_state() == before

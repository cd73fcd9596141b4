"""Leaderboard pages and API. Views parse ids, call one service or selector, and respond."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt

from base.errors import NotFound
from base.http import api_view, read_body
from base.ids import parse_id
from idempotency.keys import idempotent
from leaderboard import selectors, services
from ratelimit.limits import rate_limited
from realtime.channels import board_channel
from realtime.clients import client_address
from realtime.stream import stream, wants_stream


@csrf_exempt  # so that a wrong method gets the API's JSON 405, not a CSRF page
@api_view("GET")
def board(request: HttpRequest, board_id: str) -> HttpResponse:
    """The standings: JSON, or with ``Accept: text/event-stream`` an SSE stream of ``update`` events."""
    found = selectors.board_get(board_id=parse_id(board_id, field="board"))
    if wants_stream(request):
        response = stream(request, board_channel(found.pk), replay_latest=True)
    else:
        response = JsonResponse(selectors.board_standings(board_id=found.pk))
    patch_vary_headers(response, ["Accept"])
    return response


def _player_ids(board_id: str, player_id: str) -> dict[str, int]:
    return {
        "board_id": parse_id(board_id, field="board"),
        "player_id": parse_id(player_id, field="player"),
    }


@csrf_exempt
@api_view("GET")
def player(request: HttpRequest, board_id: str, player_id: str) -> HttpResponse:
    """One player's JSON."""
    found = selectors.player_get(**_player_ids(board_id, player_id))
    return JsonResponse(selectors.player_payload(found))


@csrf_exempt  # a public API: the page, curl and the original demo's client post without a token
@api_view("POST")
@idempotent
@rate_limited("clicks", client=client_address)
def score_add(request: HttpRequest, board_id: str, player_id: str) -> HttpResponse:
    """Add 1 to the player's score; answers with the player's JSON."""
    read_body(request)  # the body is not used, but its limit holds
    added = services.score_add(**_player_ids(board_id, player_id))
    return JsonResponse(selectors.player_payload(added))


def home(request: HttpRequest) -> HttpResponse:
    """/leaderboard/: the default board's page."""
    default = selectors.default_board()
    if default is None:
        return render(request, "leaderboard/empty.html", status=404)
    return redirect("leaderboard:page", board_id=default.pk)


def page(request: HttpRequest, board_id: str) -> HttpResponse:
    """A board: the standings rendered here, then live over SSE."""
    try:
        found = selectors.board_get(board_id=parse_id(board_id, field="board"))
    except NotFound:
        raise Http404("no such board") from None
    standings = selectors.board_shown(board_id=found.pk)
    return render(
        request,
        "leaderboard/board.html",
        {
            "board": found,
            "players": standings["players"],
            # The page posts clicks to <boardUrl>players/<id>/score-add/.
            "config": {"boardUrl": reverse("leaderboard:board", kwargs={"board_id": found.pk})},
        },
    )

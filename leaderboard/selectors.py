"""Reads of leaderboard data, and the one builder of the standings payload."""

from __future__ import annotations

from typing import Any

from base.errors import NotFound
from leaderboard.models import RANK_ORDER, Board, Player
from realtime import log
from realtime.channels import board_channel

# The standings show the top N players. This is the only place N is set: the
# JSON API, the page's first render and every published ``update`` all get
# their players from board_standings().
STANDINGS_LIMIT = 100

Standings = dict[str, list[dict[str, Any]]]


def player_payload(player: Player) -> dict[str, Any]:
    """A player's public JSON, as the API returns it and as the standings list it."""
    return {"id": player.pk, "name": player.name, "score": player.score}


def board_standings(*, board_id: int) -> Standings:
    """``{"players": [...]}``: the board's top ``STANDINGS_LIMIT`` players in rank order.

    The one payload of the JSON API, the first HTML render and every ``update``
    event. An unknown board has no players; callers check the board first.
    """
    players = Player.objects.filter(board_id=board_id).order_by(*RANK_ORDER)[:STANDINGS_LIMIT]
    return {"players": [player_payload(p) for p in players.only("id", "name", "score")]}


def board_shown(*, board_id: int) -> Standings:
    """The standings a page shows first: the board's latest ``update``, the one its stream
    starts with, so that the stream never takes the page back to older standings (the
    live standings when the board has no update yet)."""
    latest: Standings | None = log.latest_data(board_channel(board_id))
    return latest if latest is not None else board_standings(board_id=board_id)


def board_get(*, board_id: int) -> Board:
    """The board, or :class:`NotFound` for ``board``."""
    try:
        return Board.objects.get(pk=board_id)
    except Board.DoesNotExist:
        raise NotFound("board") from None


def player_get(*, board_id: int, player_id: int) -> Player:
    """The player on that board, or :class:`NotFound` naming the unknown id."""
    try:
        return Player.objects.get(pk=player_id, board_id=board_id)
    except Player.DoesNotExist:
        raise player_not_found(board_id=board_id) from None


def player_not_found(*, board_id: int) -> NotFound:
    """The error for a (board, player) pair that names no player: which id is wrong."""
    return NotFound("player" if Board.objects.filter(pk=board_id).exists() else "board")


def board_channels() -> list[str]:
    """The channel of every board."""
    return [board_channel(pk) for pk in Board.objects.values_list("pk", flat=True)]


def default_board() -> Board | None:
    """The board that /leaderboard/ opens: the oldest one."""
    return Board.objects.order_by("id").first()

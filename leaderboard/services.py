"""Writes of leaderboard data. Every write publishes the board's standings.

Every ``update`` event is built in a transaction that first locks the board's
channel (:func:`realtime.log.lock_channel`), by :func:`_publish_standings`
or :func:`board_refresh`: builders of one board take turns, so a later event id always carries
standings read after the earlier one's, and no score ever goes down from one
event to the next. Events are published only after commit: no client sees a
rolled-back score. A click commits its score alone and has the standings
stored and published after commit, coalesced with the clicks around it.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import DateTimeField, F, Func
from django.db.models.sql import UpdateQuery

from leaderboard import selectors
from leaderboard.models import Board, Player
from leaderboard.validation import validate_name, validate_player_names
from realtime import log, publish
from realtime.channels import board_channel

DEFAULT_BOARD_NAME = "Default"
DEFAULT_PLAYERS = ("Ada", "Grace", "Linus", "Margaret", "Guido")


class StatementTimestamp(Func):
    """PostgreSQL's ``statement_timestamp()``.

    Not ``now()``: that is the transaction's start, taken before it waited for
    any lock, so a writer that waited for another would look as if it had
    scored before the writer it waited for. Not Python's clock: app processes on
    several hosts would disagree. One value per statement, so a reset gives
    every player the same time and the tie goes to the older player.
    """

    template = "statement_timestamp()"
    output_field = DateTimeField()

    def as_sqlite(self, compiler: object, connection: object, **extra: object) -> tuple[str, list]:
        # `make run`'s SQLite fallback: 'now' is also one value per statement,
        # in the text form Django stores datetimes in there (UTC).
        return "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'now')", []


def _publish_standings(board_id: int) -> int:
    """Store the board's current standings as an ``update`` event; published after commit."""
    standings = selectors.board_standings(board_id=board_id)
    return log.send(board_channel(board_id), "update", standings)


def board_refresh(*, board_id: int) -> int | None:
    """Store and publish the board's standings unless its latest ``update`` already has them.

    Returns the new event's id, or ``None`` when nothing changed. Runs after
    clicks (coalesced) and when a subscriber connects; the lock-free check
    first keeps an unchanged board from taking the channel lock.
    """
    channel = board_channel(board_id)
    if log.is_latest(channel, selectors.board_standings(board_id=board_id)):
        return None
    with transaction.atomic():
        log.lock_channel(channel)
        # Read again under the lock: another writer may have stored them meanwhile.
        standings = selectors.board_standings(board_id=board_id)
        return log.send_changed(channel, "update", standings)


def _score_add_sql(board_id: int, player_id: int) -> tuple[str, list[object]]:
    """The ``UPDATE`` that ``QuerySet.update`` would run, ``RETURNING`` the updated player."""
    players = Player.objects.filter(pk=player_id, board_id=board_id)
    update = players.query.chain(UpdateQuery)
    update.add_update_values({"score": F("score") + 1, "score_changed_at": StatementTimestamp()})
    sql, params = update.get_compiler(players.db).as_sql()
    return f"{sql} RETURNING *", list(params)


def score_add(*, board_id: int, player_id: int) -> Player:
    """Add 1 to the player's score, atomically in the database.

    After commit, :func:`board_refresh` stores and publishes the board's
    standings as an ``update`` on channel ``board-<board_id>``, coalesced by
    :func:`realtime.publish.snapshot_after_commit`: clicks within
    ``REALTIME_SNAPSHOT_INTERVAL_MS`` share one update, which includes them
    all. Raises :class:`NotFound` (``board`` or ``player``) when the pair names
    no player; then nothing is written.
    """
    # One statement, committed on its own unless the caller has a transaction
    # open: only the player's row is locked, for one round trip, so clicks on
    # different players do not wait for each other, and the answer carries
    # exactly this click's score.
    player = next(iter(Player.objects.raw(*_score_add_sql(board_id, player_id))), None)
    if player is None:
        raise selectors.player_not_found(board_id=board_id)
    publish.snapshot_after_commit(board_channel(board_id), lambda: board_refresh(board_id=board_id))
    return player


def board_create(*, name: object, players: Sequence[object]) -> Board:
    """Create a board with players at score 0, and its first ``update`` event.

    Every board has a stored ``update`` from its first moment, so a new
    subscriber always has the latest standings to replay. Raises
    :class:`chatdemo.http.FieldError` (``name`` or ``players``).
    """
    board_name = validate_name(name, field="name")
    player_names = validate_player_names(players)
    with transaction.atomic():
        board = Board.objects.create(name=board_name)
        log.lock_channel(board_channel(board.pk))
        # One at a time, so that ids (the last tie-break) follow the given order.
        for player_name in player_names:
            Player.objects.create(board=board, name=player_name)
        _publish_standings(board.pk)
    return board


def board_reset(*, board_id: int) -> Board:
    """Set every score on the board to 0 and publish the standings.

    Raises :class:`NotFound` for ``board``.
    """
    with transaction.atomic():
        log.lock_channel(board_channel(board_id))
        board = selectors.board_get(board_id=board_id)
        Player.objects.filter(board_id=board_id).update(
            score=0, score_changed_at=StatementTimestamp()
        )
        _publish_standings(board_id)
    return board


def board_publish(*, board_id: int) -> int:
    """Publish the board's current standings as a fresh ``update``; returns its event id.

    For writes made outside these services (the admin), and for a subscriber
    whose replayable latest event has expired. Raises :class:`NotFound` for ``board``.
    """
    with transaction.atomic():
        log.lock_channel(board_channel(board_id))
        selectors.board_get(board_id=board_id)
        return _publish_standings(board_id)


def default_board_ensure() -> Board:
    """The board that /leaderboard/ opens; created with five players if there is none."""
    board = selectors.default_board()
    if board is None:
        board = board_create(name=DEFAULT_BOARD_NAME, players=DEFAULT_PLAYERS)
    return board

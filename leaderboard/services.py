"""Writes of leaderboard data. Every write publishes the board's standings.

Every ``update`` event is built in a transaction that first locks the board's
channel (:func:`realtime.log.lock_channel`), by :func:`_publish_standings`
or :func:`board_refresh`: builders of one board take turns, so a later event id always carries
standings read after the earlier one's, and no score ever goes down from one
event to the next. Events are published only after commit: no client sees a
rolled-back score. A click commits its score alone; the publisher process
then stores and publishes the standings (:func:`board_snapshot`), coalesced
with the clicks around it.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, transaction
from django.db.models import DateTimeField, Func

from leaderboard import selectors
from leaderboard.models import Board, Player
from leaderboard.validation import validate_name, validate_player_names
from realtime import log
from realtime.channels import board_channel, board_id_of

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
    # `make run`'s SQLite fallback: 'now' is also one value per statement, in
    # the text form Django stores datetimes in there (UTC).
    sqlite_template = "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'now')"

    def as_sqlite(
        self, compiler: object, connection: object, **extra: object
    ) -> tuple[str, list[str | int]]:
        return self.sqlite_template, []

    @classmethod
    def sql(cls, vendor: str) -> str:
        """The expression as SQL text, for a statement written by hand."""
        return cls.template if vendor == "postgresql" else cls.sqlite_template


def _publish_standings(board_id: int) -> int:
    """Store the board's current standings as an ``update`` event; the publisher publishes it."""
    standings = selectors.board_standings(board_id=board_id)
    return log.send(board_channel(board_id), "update", standings)


def board_refresh(*, board_id: int) -> int | None:
    """Store and publish the board's standings unless its latest ``update`` already has them.

    Returns the new event's id, or ``None`` when nothing changed. Runs after
    clicks, in the publisher, coalesced (:func:`board_snapshot`); the lock-free
    check first keeps an unchanged board from taking the channel lock.
    """
    channel = board_channel(board_id)
    if log.is_latest(channel, selectors.board_standings(board_id=board_id)):
        return None
    with transaction.atomic():
        log.lock_channel(channel)
        # Read again under the lock: another writer may have stored them meanwhile.
        standings = selectors.board_standings(board_id=board_id)
        return log.send_changed(channel, "update", standings)


def board_snapshot(channel: str) -> None:
    """The publisher's snapshot of a board's channel (registered in
    :class:`leaderboard.apps.LeaderboardConfig`): its standings, stored as an ``update``
    if they changed. A board deleted meanwhile has none."""
    board_id = board_id_of(channel)
    if board_id is not None and Board.objects.filter(pk=board_id).exists():
        board_refresh(board_id=board_id)


def _score_add_sql() -> str:
    """``UPDATE`` the player's score by 1, ``RETURNING`` the updated player."""
    quote = connection.ops.quote_name
    return (
        f"UPDATE {quote(Player._meta.db_table)} SET score = score + 1, "  # noqa: S608 - quoted model table; values are parameters
        f"score_changed_at = {StatementTimestamp.sql(connection.vendor)} "
        "WHERE id = %s AND board_id = %s RETURNING *"
    )


def score_add(*, board_id: int, player_id: int) -> Player:
    """Add 1 to the player's score, atomically in the database.

    After commit, the publisher process stores and publishes the board's
    standings as an ``update`` on channel ``board-<board_id>``
    (:func:`board_snapshot`), coalesced: clicks within
    ``REALTIME_SNAPSHOT_INTERVAL_MS`` share one update, which includes them
    all. Raises :class:`NotFound` (``board`` or ``player``) when the pair names
    no player; then nothing is written.
    """
    # One UPDATE: only the player's row is locked, so clicks on different
    # players do not wait for each other, and the answer carries exactly this
    # click's score.
    with transaction.atomic():
        player = next(iter(Player.objects.raw(_score_add_sql(), [player_id, board_id])), None)
        if player is None:
            raise selectors.player_not_found(board_id=board_id)
        log.state_changed(board_channel(board_id))
    return player


def board_create(*, name: object, players: Sequence[object]) -> Board:
    """Create a board with players at score 0, and its first ``update`` event.

    Every board has a stored ``update`` from its first moment, so a new
    subscriber always has the latest standings to replay. Raises
    :class:`base.errors.InvalidField` (``name`` or ``players``).
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

    For writes made outside these services (the admin). Raises :class:`NotFound`
    for ``board``.
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

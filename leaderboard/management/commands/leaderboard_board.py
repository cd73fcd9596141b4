"""Create a leaderboard, or reset one's scores.

manage.py leaderboard_board create "Office foosball" Ann Bob Cleo
manage.py leaderboard_board reset 3
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from base.errors import DomainError
from base.ids import parse_id
from leaderboard import services


class Command(BaseCommand):
    help = "Create a leaderboard with named players, or reset a leaderboard's scores to 0."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="create a board with players at score 0")
        create.add_argument("name")
        create.add_argument("players", nargs="+", metavar="player")
        reset = actions.add_parser("reset", help="set every score on a board to 0")
        reset.add_argument("board_id", metavar="board-id")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "create":
                board = services.board_create(name=options["name"], players=options["players"])
                self.stdout.write(
                    f"created board {board.pk} {board.name!r} with "
                    f"{board.players.count()} players: /leaderboard/{board.pk}/"
                )
            else:
                board = services.board_reset(board_id=parse_id(options["board_id"], field="board"))
                self.stdout.write(f"reset board {board.pk} {board.name!r}")
        except DomainError as error:
            raise CommandError(f"{error.field}: {error.message}") from None

"""``manage.py chat_delete <id> [<id> ...]``: delete chat messages from outside the web app.

Each goes through the same service as the admin (``chat.services.message_delete``):
the message leaves the history, and its ``message-delete`` event, published after
commit, removes it from every open page of its room.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from base.errors import NotFound
from base.ids import parse_id
from chat import selectors, services


class Command(BaseCommand):
    help = (
        "Delete chat messages by id, and print each one's event: "
        '{"id": <id>, "room": <room>}. '
        "Like rm: an unknown id is reported and the others are still deleted, "
        "and then the command fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="+", metavar="id", help="a message id")

    def handle(self, *args: Any, ids: list[str], **options: Any) -> None:
        unknown = []
        for value in ids:
            try:
                message = services.message_delete(message_id=parse_id(value, field="message"))
            except NotFound:
                unknown.append(value)
                self.stderr.write(f"message {value}: no such message")
                continue
            self.stdout.write(json.dumps(selectors.message_delete_payload(message)))
        if unknown:
            raise CommandError(f"no such message: {', '.join(unknown)}")

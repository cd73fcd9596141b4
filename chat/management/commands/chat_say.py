"""``manage.py chat_say <room> <nick> <text>``: post a chat message from outside the web app.

It goes through the same service as the API (``chat.services.message_post``),
so the message is stored and its event published after commit exactly as a
POST would, and browsers subscribed to the room get it.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from base.errors import DomainError
from chat import selectors, services


class Command(BaseCommand):
    help = "Post a chat message to a room, as the API would, and print its JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("room")
        parser.add_argument("nick", help="the sender's nickname (the API's 'from' field)")
        parser.add_argument("text")

    def handle(self, *args: Any, room: str, nick: str, text: str, **options: Any) -> None:
        try:
            message = services.message_post(room=room, author=nick, text=text)
        except DomainError as error:
            raise CommandError(f"{error.field}: {error.message}") from None
        self.stdout.write(json.dumps(selectors.message_payload(message)))

"""``python manage.py realtime_publish``: the publisher process (realtime.publisher)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from realtime import proxy
from realtime.publisher import Publisher


class Command(BaseCommand):
    help = (
        "Publish committed events to the GRIP proxy, and take whole-state snapshots. "
        "Run one per database; a second one waits as a standby."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        Publisher(proxy.transport()).run(stop)

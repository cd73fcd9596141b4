"""A publish that fails while the proxy is unreachable is sent again once it is back.

Without the retry, the last message of a conversation whose publish failed
would reach a held stream only at its next-link timer (10 minutes), because
no later publish reveals the gap. Here the publish API is reached through a
real TCP gate that this test closes and opens: the connection fails as it
would while Pushpin restarts, and nothing is mocked.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import transaction

from chat.services import message_post
from chatdemo.stack import free_port, wait_until
from tests.conftest import Stack, wait_first_recovery_fetch

pytestmark = pytest.mark.integration


class Gate:
    """A TCP forwarder to ``target``: while closed, it accepts and drops each connection."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.open = True
        self.refused = 0
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._links: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close_gate(self) -> None:
        self.open = False
        for sock in self._links:  # pooled keep-alive connections fail too
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # stopped
            if not self.open:
                self.refused += 1
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self._links += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._server.close()
        for sock in self._links:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture
def gate(live_db: Stack, settings: Any) -> Iterator[Gate]:
    """This process publishes to the session's Pushpin through the gate."""
    publish = urlsplit(live_db.pushpin.publish_url)
    gate = Gate((publish.hostname or "127.0.0.1", publish.port or 80))
    settings.GRIP_URL = live_db.pushpin.grip_url().replace(
        f"{publish.hostname}:{publish.port}", f"127.0.0.1:{gate.port}"
    )
    yield gate
    gate.stop()


def test_failed_publish_is_sent_again_when_the_proxy_is_back(
    live_db: Stack, gate: Gate, room: str, subscribers: list, caplog: pytest.LogCaptureFixture
) -> None:
    sub = live_db.subscribe(f"/rooms/{room}/events/")
    subscribers.append(sub)
    sub.wait_open()
    wait_first_recovery_fetch(live_db.pushpin, room)
    with transaction.atomic():
        message_post(room=room, author="Ann", text="before")
    sub.wait_count("message", 1)

    gate.close_gate()
    with transaction.atomic():
        last = message_post(room=room, author="Ann", text="the last word")
    failed = f"publish channel=room-{room} event=message id={last.event_id} ok=false"
    wait_until(
        lambda: any(r.getMessage().startswith(failed) for r in caplog.records),
        timeout=10,
        what="the publish call to fail at the gate",
    )
    assert gate.refused >= 1
    gate.open = True

    # No later message follows: only the retry can deliver it before the next link (10 min).
    events = sub.wait_count("message", 2, timeout=15)
    assert [e.json()["text"] for e in events] == ["before", "the last word"]
    assert events[1].json()["id"] == last.pk

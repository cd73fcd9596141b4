"""Reading SSE: the parser that every client here uses (the tests' threaded
:class:`Subscriber`, bench.load's asyncio clients, bench.faults' reconnecting one),
and a small, real client that lets tests wait for a condition with a hard timeout
(never sleep and hope)."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


def parse_event_block(lines: Iterable[str]) -> tuple[str, str | None, list[str]]:
    """One SSE event's fields from its lines: (event type, id or None, data lines).

    Comment lines (starting with ":") and unknown fields are ignored.
    """
    event, event_id, data = "message", None, []
    for line in lines:
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
    return event, event_id, data


def read_events(readline: Callable[[], bytes]) -> Iterator[tuple[str, str | None, list[str]]]:
    """The events of a blocking SSE stream, parsed as they come, until it ends."""
    block: list[str] = []
    while raw := readline():
        line = raw.decode("utf-8").rstrip("\r\n")
        if line:
            block.append(line)
            continue
        yield parse_event_block(block)
        block = []


@dataclass(frozen=True)
class SSEEvent:
    event: str
    data: str
    id: str | None
    # When it was read (time.monotonic()), for latency measurements; not part of equality.
    received: float = field(default_factory=time.monotonic, compare=False)

    def json(self) -> Any:
        return json.loads(self.data)


class Subscriber:
    """Subscribe to ``url`` and collect its events until :meth:`close`.

    With ``reconnect``, it behaves as a browser's EventSource does when a stream
    ends: it connects again, with the ``Last-Event-ID`` of the last event it got
    (``reconnects`` counts how often). Pushpin may end a held stream on its own
    (its handler cancels a session whose messages from condure arrive out of
    sequence, seen here when 100 streams open at once); what must hold is that
    the events, across reconnects, come once each and in order.
    """

    RECONNECT_DELAY = 0.2

    def __init__(
        self, url: str, headers: Mapping[str, str] | None = None, *, reconnect: bool = False
    ) -> None:
        self.url = url
        self.headers = {"Accept": "text/event-stream", **(headers or {})}
        self.reconnect = reconnect
        self.reconnects = 0
        self.events: list[SSEEvent] = []
        self.last_id: str | None = None
        self.status: int | None = None
        self.response_headers: dict[str, str] | None = None
        self.error: BaseException | None = None
        self.closed = False
        self._stopping = False
        self._cond = threading.Condition()
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._conn = http.client.HTTPConnection(self._host, self._port, timeout=10)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while self._follow_or_lose() and self.reconnect and not self._stopping:
                time.sleep(self.RECONNECT_DELAY)
                with self._cond:
                    if self._stopping:
                        break
                    self.reconnects += 1
                    self._conn = http.client.HTTPConnection(self._host, self._port, timeout=10)
        except BaseException as exc:
            if not self._stopping:
                self.error = exc
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def _follow_or_lose(self) -> bool:
        """:meth:`_follow`; with ``reconnect``, a connection lost or refused (the proxy was
        killed) counts as a stream that ended, as EventSource takes it."""
        try:
            return self._follow()
        except (OSError, http.client.HTTPException):
            if not self.reconnect or self._stopping:
                raise
            return True

    def _follow(self) -> bool:
        """Read one connection's stream to its end; whether it was a stream (a 200)."""
        headers = dict(self.headers)
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        self._conn.request("GET", self._path, headers=headers)
        response = self._conn.getresponse()
        if self._conn.sock is not None:
            self._conn.sock.settimeout(None)  # a stream may be idle for long
        with self._cond:
            self.status = response.status
            self.response_headers = {k.lower(): v for k, v in response.getheaders()}
            self._cond.notify_all()
        for event, event_id, data in read_events(response.readline):
            if event_id:
                self.last_id = event_id
            if data:
                self._append(SSEEvent(event, "\n".join(data), event_id))
        return response.status == 200

    def _append(self, event: SSEEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of_type(self, event_type: str) -> list[SSEEvent]:
        with self._cond:
            return [e for e in self.events if e.event == event_type]

    def wait_for(
        self, predicate: Callable[[Subscriber], bool], timeout: float = 10, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {what}; status={self.status} "
                        f"error={self.error!r} events={[(e.event, e.id) for e in self.events]}"
                    )
                if self.closed and not predicate(self):
                    raise AssertionError(
                        f"stream closed while waiting for {what}; status={self.status} "
                        f"error={self.error!r} events={[(e.event, e.id) for e in self.events]}"
                    )
                self._cond.wait(min(remaining, 0.5))

    def wait_open(self, timeout: float = 10) -> None:
        self.wait_for(
            lambda s: any(e.event == "stream-open" for e in s.events), timeout, "stream-open"
        )

    def wait_count(self, event_type: str, count: int, timeout: float = 10) -> list[SSEEvent]:
        self.wait_for(
            lambda s: len(s.of_type(event_type)) >= count, timeout, f"{count} {event_type!r} events"
        )
        return self.of_type(event_type)

    def close(self) -> None:
        """Drop the connection at once (shutdown unblocks the reader thread)."""
        with self._cond:
            self._stopping = True
            self.closed = True
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._conn.close()
        self._thread.join(5)

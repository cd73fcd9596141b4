"""Load generators: SSE subscribers and HTTP posters, in worker processes.

Each :class:`Worker` is a separate process running one asyncio loop (uvloop
when installed) that holds many raw-socket clients: an SSE subscriber costs a
socket, a buffer and a list of received events, not a thread. The parent
drives workers with small commands over a pipe and gets plain tuples back.

Every timestamp is ``time.time()`` on the same machine, so a delivery's
latency is its receive time minus the send time of the POST (or raw publish)
that caused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import multiprocessing
import multiprocessing.connection
import resource
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devstack.sse import parse_event_block

# Events that carry no payload worth recording.
_IGNORED = {"keep-alive", "stream-open"}


def raise_nofile_limit() -> int:
    """Raise this process's soft open-files limit to the hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class Received:
    """What one subscriber saw: (event type, SSE id, data, receive time) per event, and
    when it began to connect and when its ``stream-open`` came."""

    events: list[tuple[str, str | None, str, float]] = field(default_factory=list)
    opened: bool = False
    started: float | None = None
    opened_at: float | None = None
    status: int | None = None
    error: str | None = None
    closed: bool = False


def _dechunk(raw: bytes) -> tuple[bytes, bytes, bool]:
    """Decode the complete chunks at the start of ``raw``: (body, rest, last chunk seen)."""
    out = []
    pos = 0
    while (eol := raw.find(b"\r\n", pos)) >= 0:
        size = int(raw[pos:eol].split(b";")[0], 16)
        if size == 0:
            return b"".join(out), b"", True
        end = eol + 2 + size
        if len(raw) < end + 2:
            break
        out.append(raw[eol + 2 : end])
        pos = end + 2
    return b"".join(out), raw[pos:], False


class _Subscriber:
    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        headers: dict[str, str],
        *,
        started: float | None = None,
        events: list[tuple[str, str | None, str, float]] | None = None,
    ) -> None:
        self.host, self.port, self.path, self.headers = host, port, path, headers
        # ``started``: when a retried connect first began; ``events``: what a subscriber
        # that reconnects saw before, kept so that a check spans its reconnects.
        self.started = started
        self.seen = Received(events=[] if events is None else events)
        self.counts: dict[str, int] = {}  # across reconnects, as ``seen.events``
        for name, *_rest in self.seen.events:
            self.counts[name] = self.counts.get(name, 0) + 1
        self.on_event: Callable[[_Subscriber, str], None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.opened = asyncio.Event()

    async def run(self) -> None:
        self.seen.started = self.started or time.time()
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.writer = writer
            lines = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
            lines += [
                f"{k}: {v}" for k, v in {"Accept": "text/event-stream", **self.headers}.items()
            ]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, _, header_block = head.decode("latin-1").partition("\r\n")
            self.seen.status = int(status_line.split()[1])
            if self.seen.status != 200:
                # No stream will follow (EventSource too gives up on any other status):
                # fail now rather than wait for the proxy to close the connection.
                self.seen.error = f"status {self.seen.status}"
                return
            chunked = "transfer-encoding: chunked" in header_block.lower()
            await self._parse(reader, chunked)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
            self.seen.error = f"{type(error).__name__}: {error}"
        finally:
            self.seen.closed = True
            self.opened.set()
            if self.writer is not None:
                self.writer.close()

    async def _parse(self, reader: asyncio.StreamReader, chunked: bool) -> None:
        """Read the body in large reads and split it into events without awaiting per chunk:
        at thousands of streams per process, an await per chunk is the client's bottleneck."""
        raw = b""  # chunked transfer encoding not yet decoded
        buffer = b""  # decoded SSE text not yet split into events
        ended = False
        while not ended:
            data = await reader.read(65536)
            if not data:
                return
            now = time.time()
            if chunked:
                body, raw, ended = _dechunk(raw + data)
                buffer += body
            else:
                buffer += data
            *blocks, buffer = buffer.split(b"\n\n")
            for block in blocks:
                self._event(block, now)

    def _event(self, block: bytes, now: float) -> None:
        event, event_id, data = parse_event_block(block.decode().split("\n"))
        if not data and event == "message":
            return  # a comment block such as the 2 KiB padding
        if event == "stream-open":
            self.seen.opened = True
            self.seen.opened_at = now
            self.opened.set()
            return
        if event in _IGNORED:
            return
        self.seen.events.append((event, event_id, "\n".join(data), now))
        self.counts[event] = self.counts.get(event, 0) + 1
        if self.on_event is not None:
            self.on_event(self, event)

    def last_event_id(self) -> str | None:
        """What EventSource would send as ``Last-Event-ID``: the last id it received."""
        return next((e[1] for e in reversed(self.seen.events) if e[1]), None)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.task is not None:
            self.task.cancel()


async def _post_loop(
    *,
    host: str,
    port: int,
    requests: list[tuple[float, str, bytes, dict[str, str]]],
    concurrency: int,
    key: Callable[[int, bytes], Any],
    stop: asyncio.Event | None = None,
) -> list[tuple[Any, float, float, int]]:
    """Send ``requests`` (at-time, path, body, headers) over ``concurrency`` keep-alive
    connections; each is sent no earlier than its at-time. Returns (key, sent, done, status).

    With ``stop``, the requests are sent over and over until it is set (each
    connection finishes the request it has in flight).
    """
    results: list[tuple[Any, float, float, int]] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(requests)):
        queue.put_nowait(index)
    endless = itertools.count()

    async def poster() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                if stop is not None:
                    if stop.is_set():
                        return
                    index = next(endless) % len(requests)
                else:
                    try:
                        index = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                at, path, body, headers = requests[index]
                delay = at - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}"]
                head += [f"{k}: {v}" for k, v in headers.items()]
                head.append(f"Content-Length: {len(body)}")
                sent = time.time()
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                response_head = await reader.readuntil(b"\r\n\r\n")
                status = int(response_head.split(b" ", 2)[1])
                lower = response_head.lower()
                length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
                response = await reader.readexactly(length)
                done = time.time()
                results.append((key(index, response) if status < 300 else None, sent, done, status))
                if b"connection: close" in lower:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    await asyncio.gather(*(poster() for _ in range(concurrency)))
    return results


def _key_function(kind: str) -> Callable[[int, bytes], Any]:
    if kind == "json-id":  # the app's answer is the stored message: key by its id
        return lambda index, body: json.loads(body)["id"]
    if kind == "json-id-score":  # the app's answer is the player after the click
        return lambda index, body: (json.loads(body)["id"], json.loads(body)["score"])
    return lambda index, body: index  # raw publishes carry their own index


class _WorkerLoop:
    """Runs in the worker process: executes commands from the parent."""

    def __init__(self, conn: multiprocessing.connection.Connection) -> None:
        self.conn = conn
        self.subscribers: list[_Subscriber] = []
        self.posting: tuple[asyncio.Event, asyncio.Future[Any]] | None = None

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        def read_commands() -> None:
            # A thread with blocking reads: an event loop's reader would make the
            # pipe non-blocking, and a large answer would then fail halfway.
            with contextlib.suppress(EOFError, OSError):
                while True:
                    loop.call_soon_threadsafe(inbox.put_nowait, self.conn.recv())

        threading.Thread(target=read_commands, daemon=True).start()
        while True:
            command, args = await inbox.get()
            if command == "close":
                for sub in self.subscribers:
                    sub.close()
                self.conn.send(("closed", None))
                return
            handler = getattr(self, f"do_{command}")
            try:
                self.conn.send(("ok", await handler(**args)))
            except Exception as error:
                self.conn.send(("error", f"{type(error).__name__}: {error}"))

    async def do_subscribe(
        self,
        host: str,
        port: int,
        paths: list[str],
        headers: dict[str, str],
        spread: float,
        concurrency: int,
        timeout: float,
        attempts: int = 3,
    ) -> dict[str, int]:
        """Open one stream per path, at most ``concurrency`` connecting at once, their
        starts spread evenly over ``spread`` seconds; wait until each is open.

        A stream that fails or does not open within ``timeout`` seconds is
        retried (as a browser's EventSource would reconnect), up to ``attempts``
        times in all; the retries are counted.
        """
        streams = [(path, headers, None) for path in paths]
        return await self._open(host, port, streams, spread, concurrency, timeout, attempts)

    async def do_reconnect(
        self, concurrency: int, timeout: float, attempts: int = 3
    ) -> dict[str, int]:
        """Drop every stream and open it again at once, as EventSource reconnects: with
        ``Last-Event-ID`` set to the last id it received. What each saw before is kept."""
        old, self.subscribers = self.subscribers, []
        streams = []
        for sub in old:
            sub.close()
            last_id = sub.last_event_id()
            headers = {**sub.headers, **({"Last-Event-ID": last_id} if last_id else {})}
            streams.append((sub.path, headers, sub.seen.events))
        if not old:
            return {"opened": 0, "failed": 0, "retries": 0, "errors": {}}
        host, port = old[0].host, old[0].port
        return await self._open(host, port, streams, 0.0, concurrency, timeout, attempts)

    async def _open(
        self,
        host: str,
        port: int,
        streams: list[tuple[str, dict[str, str], list[Any] | None]],
        spread: float,
        concurrency: int,
        timeout: float,
        attempts: int,
    ) -> dict[str, int]:
        gate = asyncio.Semaphore(concurrency)
        start = time.time()
        opened: list[_Subscriber] = []
        retries = failed = 0
        errors: dict[str, int] = {}  # why attempts failed: "status 502", "no stream-open", ...

        async def open_one(
            index: int, path: str, headers: dict[str, str], events: list[Any] | None
        ) -> None:
            nonlocal retries, failed
            if spread:
                await asyncio.sleep(max(0.0, start + spread * index / len(streams) - time.time()))
            first_start = None
            for attempt in range(attempts):
                async with gate:
                    first_start = first_start or time.time()
                    sub = _Subscriber(host, port, path, headers, started=first_start, events=events)
                    sub.task = asyncio.ensure_future(sub.run())
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(sub.opened.wait(), timeout)
                if sub.seen.opened and not sub.seen.closed:
                    opened.append(sub)
                    return
                sub.close()
                reason = sub.seen.error or "no stream-open"
                errors[reason.split(":")[0]] = errors.get(reason.split(":")[0], 0) + 1
                if attempt + 1 < attempts:
                    retries += 1
            failed += 1

        await asyncio.gather(*(open_one(i, *s) for i, s in enumerate(streams)))
        self.subscribers.extend(opened)
        return {"opened": len(opened), "failed": failed, "retries": retries, "errors": errors}

    async def do_wait(
        self, event: str, timeout: float, count: int = 0, data_equals: str | None = None
    ) -> dict[str, Any]:
        """Wait until every subscriber has ``count`` events of type ``event``, or (with
        ``data_equals``) until its latest such event carries exactly that data."""

        def finished(sub: _Subscriber) -> bool:
            if data_equals is not None:
                latest = [e for e in sub.seen.events[-1:] if e[0] == event]
                return bool(latest) and latest[0][2] == data_equals
            return sub.counts.get(event, 0) >= count

        done = asyncio.Event()
        pending = {id(s) for s in self.subscribers if not finished(s)}

        def on_event(sub: _Subscriber, name: str) -> None:
            if name == event and finished(sub):
                pending.discard(id(sub))
                if not pending:
                    done.set()

        for sub in self.subscribers:
            sub.on_event = on_event
        if pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout)
        return {"complete": not pending, "missing": len(pending)}

    async def do_collect(self, clear: bool = True) -> list[dict[str, Any]]:
        """Everything each subscriber saw so far (and forget it when ``clear``)."""
        out = []
        for sub in self.subscribers:
            seen = sub.seen
            out.append(
                {
                    "events": seen.events,
                    "opened": seen.opened,
                    "status": seen.status,
                    "error": seen.error,
                    "closed": seen.closed,
                    "started": seen.started,
                    "opened_at": seen.opened_at,
                }
            )
            if clear:
                sub.seen = Received(
                    opened=seen.opened,
                    status=seen.status,
                    closed=seen.closed,
                    started=seen.started,
                    opened_at=seen.opened_at,
                )
                sub.counts = {}
        return out

    async def do_post(
        self,
        host: str,
        port: int,
        requests: list[tuple[float, str, bytes, dict[str, str]]],
        concurrency: int,
        key: str,
    ) -> list[tuple[Any, float, float, int]]:
        return await _post_loop(
            host=host,
            port=port,
            requests=requests,
            concurrency=concurrency,
            key=_key_function(key),
        )

    async def do_post_start(
        self,
        host: str,
        port: int,
        requests: list[tuple[float, str, bytes, dict[str, str]]],
        concurrency: int,
        key: str,
    ) -> None:
        """Start sending ``requests`` over and over, in the background, until ``post_stop``."""
        stop = asyncio.Event()
        task = asyncio.ensure_future(
            _post_loop(
                host=host,
                port=port,
                requests=requests,
                concurrency=concurrency,
                key=_key_function(key),
                stop=stop,
            )
        )
        self.posting = (stop, task)

    async def do_post_stop(self) -> list[tuple[Any, float, float, int]]:
        """Stop what ``post_start`` started; every request it sent, as ``post`` returns them."""
        assert self.posting is not None, "post_start first"
        (stop, task), self.posting = self.posting, None
        stop.set()
        return list(await task)


def _worker_main(conn: multiprocessing.connection.Connection) -> None:
    raise_nofile_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the plain loop works, at a higher CPU cost per client
        pass
    asyncio.run(_WorkerLoop(conn).main())


class Worker:
    """A load process. Commands are blocking calls from the parent."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def send(self, command: str, **args: Any) -> None:
        self.conn.send((command, args))

    def receive(self, timeout: float = 900) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"load worker {self.pid} did not answer in {timeout:.0f}s")
        status, value = self.conn.recv()
        if status == "error":
            raise RuntimeError(f"load worker {self.pid}: {value}")
        return value

    def call(self, command: str, timeout: float = 900, **args: Any) -> Any:
        self.send(command, **args)
        return self.receive(timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError, TimeoutError, RuntimeError):
            self.call("close", timeout=10)
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


def call_all(workers: Sequence[Worker], command: str, args: Sequence[dict[str, Any]]) -> list[Any]:
    """Send one command to every worker at once, then gather their answers in order."""
    for worker, kwargs in zip(workers, args, strict=True):
        worker.send(command, **kwargs)
    return [worker.receive() for worker in workers]


def form(fields: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return urllib.parse.urlencode(fields).encode(), {
        "Content-Type": "application/x-www-form-urlencoded"
    }

"""The fault run: chat and leaderboard traffic while the publisher, the app and Pushpin are
killed with SIGKILL and PostgreSQL is restarted; then every delivery is counted.

    python -m bench.faults                     # 2,000 messages at 20/s, about 2 minutes
    python -m bench.faults --messages 400      # a shorter run
    python -m bench.faults --retries unkeyed   # retries without Idempotency-Key
    python -m bench.faults --scenario flood    # 200 concurrent posters, pool off and on

Subscribers behave like EventSource: when their stream ends they reconnect,
with ``Last-Event-ID``. Posters and clickers retry as our pages do
(static/js/send.js): a write that got no answer or a 5xx is sent again, with
the same ``Idempotency-Key``, until it gets an answer (``--retries keyed``, the
default). ``--retries unkeyed`` retries without a key, as a client of an API
without keys would; ``--retries none`` sends each write once. Every answer is
counted, and every write against what the database holds. Restarting
PostgreSQL needs ``pg_ctlcluster`` (Debian) and restarts the whole local
cluster: run it on a machine where nothing else uses that cluster.
Prints one JSON document; asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.stacks import (
    Target,
    app_environment,
    create_board,
    prepare_database,
    process_tree,
    start_app,
)
from devstack.processes import wait_until
from devstack.sse import read_events

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chatdemo_faults"


class Follower:
    """An SSE subscriber that reconnects like EventSource, resuming with Last-Event-ID."""

    def __init__(self, port: int, path: str) -> None:
        self.port, self.path = port, path
        self.events: list[tuple[str, str, str]] = []  # (type, id, data)
        self.last_id: str | None = None
        self.reconnects = 0
        self.opened = False
        self.stopped = False
        self._conn: http.client.HTTPConnection | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.stopped:
            with contextlib.suppress(OSError, http.client.HTTPException):
                self._follow()
            if not self.stopped:
                self.reconnects += 1
                time.sleep(0.5)  # EventSource's retry delay is of this order

    def _follow(self) -> None:
        headers = {"Accept": "text/event-stream"}
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self._conn.request("GET", self.path, headers=headers)
        response = self._conn.getresponse()
        if response.status != 200:
            response.read()
            return
        self.opened = True
        for event, event_id, data in read_events(response.readline):
            if self.stopped:
                return
            if event_id and event_id != "error":
                self.last_id = event_id
            if event in ("message", "update") and data:
                self.events.append((event, event_id or "", "\n".join(data)))

    def stop(self) -> None:
        self.stopped = True
        if self._conn is not None and self._conn.sock is not None:
            with contextlib.suppress(OSError):
                self._conn.sock.shutdown(2)


def numbers(events: list[tuple[str, str, str]]) -> list[int]:
    return [int(event_id.rpartition(":")[2]) for _, event_id, _ in events]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True
    )


def kill(*processes: Any) -> None:
    """SIGKILL each process and everything it started (Pushpin's runner starts its
    parts in process groups of their own)."""
    for pid in process_tree([p.pid for p in processes if p is not None]):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class AnswerDropper:
    """A TCP relay to the app that loses every ``every``-th answer: it passes the request on,
    and when the app's answer starts (the write has committed), closes the client's connection
    instead. The client sees what a proxy or app that died at that moment would show it.

    One request per connection (the writer sends ``Connection: close``).
    """

    def __init__(self, upstream_port: int, every: int) -> None:
        self.upstream_port, self.every = upstream_port, every
        self.count = 0
        self.dropped = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self._server.accept()
            self.count += 1
            drop = self.every > 0 and self.count % self.every == 0
            threading.Thread(target=self._relay, args=(client, drop), daemon=True).start()

    def _relay(self, client: socket.socket, drop: bool) -> None:
        with (
            client,
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as app,
        ):
            threading.Thread(target=self._pump, args=(client, app), daemon=True).start()
            first = True
            while chunk := app.recv(65536):
                if first and drop:
                    self.dropped += 1
                    client.shutdown(socket.SHUT_RDWR)
                    return
                first = False
                client.sendall(chunk)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)


class Writer:
    """Sends writes as our pages do, per ``retries`` (see the module), and counts every answer."""

    GIVE_UP_SECONDS = 90

    def __init__(self, client: httpx.Client, retries: str) -> None:
        self.client, self.retries = client, retries
        self.answers: collections.Counter[str] = collections.Counter()

    def post(self, url: str, data: dict[str, str] | None = None) -> int | str:
        """The final answer's status (or the error's name) after any retries."""
        headers = {"Connection": "close"}  # one request per connection (AnswerDropper)
        if self.retries == "keyed":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        deadline = time.monotonic() + self.GIVE_UP_SECONDS
        while True:
            outcome: int | str
            try:
                response = self.client.post(url, data=data, headers=headers)
                outcome = response.status_code
                if response.headers.get("Idempotent-Replayed") == "true":
                    self.answers["replayed"] += 1
            except httpx.HTTPError as error:
                outcome = type(error).__name__
            self.answers[str(outcome)] += 1
            failed = not isinstance(outcome, int) or outcome >= 500
            if not failed or self.retries == "none" or time.monotonic() > deadline:
                return outcome
            time.sleep(0.2)


@dataclass(frozen=True)
class Load:
    """The fault run's traffic (see the module and ``main``'s options)."""

    messages: int
    rate: float
    subscribers: int
    retries: str
    drop_every: int


@contextlib.contextmanager
def running_app(database_url: str, name: str, **options: Any) -> Iterator[tuple[Target, Path]]:
    """A fresh database and the app's stack (``bench.stacks.start_app``) for one run."""
    prepare_database(database_url)
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    target = start_app(workdir, database_url=database_url, **options)
    try:
        yield target, workdir
    finally:
        target.stop()


def run(database_url: str, load: Load) -> dict[str, Any]:
    with running_app(database_url, "faults") as (target, workdir):
        return _run(target, database_url, load, workdir)


def _run(target: Target, database_url: str, load: Load, workdir: Path) -> dict[str, Any]:
    messages, rate, subscribers = load.messages, load.rate, load.subscribers
    retries, drop_every = load.retries, load.drop_every
    assert target.pushpin is not None and target.publisher is not None
    port = target.pushpin.ports.http
    app = target.apps[0]
    room = f"faults-{uuid.uuid4().hex[:6]}"
    env = app_environment(database_url, grip_url="")
    board = create_board(database_url, "Faults", ["Ann", "Bob"])
    players = [p["id"] for p in httpx.get(f"{app.url}/boards/{board}/").json()["players"]]
    chat = [Follower(port, f"/rooms/{room}/events/") for _ in range(subscribers)]
    boards = [Follower(port, f"/boards/{board}/") for _ in range(subscribers // 4 or 1)]
    wait_until(lambda: all(f.last_id for f in boards), timeout=30, what="board streams")
    wait_until(lambda: all(f.opened for f in chat), timeout=30, what="chat streams")
    time.sleep(1)  # Pushpin's first fetch of each new stream's link

    posted: dict[str, int | str] = {}  # text -> final status (or the error)
    clicks: dict[int, int] = dict.fromkeys(players, 0)  # player -> clicks answered 2xx
    click_errors = 0
    faults: list[tuple[float, str]] = []
    supervisors: list[threading.Thread] = []
    started = time.monotonic()
    plan = [
        (0.15, "publisher", lambda: kill(target.publisher.process)),
        (0.25, "app", lambda: kill(app.process)),
        (0.35, "pushpin", lambda: kill(*target.pushpin.processes)),
        (0.5, "postgresql", restart_postgres),
        (0.6, "publisher", lambda: kill(target.publisher.process)),
        (0.7, "app", lambda: kill(app.process)),
        (0.8, "pushpin", lambda: kill(*target.pushpin.processes)),
    ]

    def supervise(name: str) -> None:
        """Start again what was killed, as a process supervisor would."""
        time.sleep(1.0)
        component = {"publisher": target.publisher, "app": app, "pushpin": target.pushpin}.get(name)
        if component is None:
            return
        component.stop()
        for _ in range(30):
            try:
                component.start()
                return
            except Exception:  # the database may still be restarting
                time.sleep(1)

    with httpx.Client(timeout=10) as client:
        writer = Writer(client, retries)
        # Writes go through the relay, which loses some answers; reads go to the app.
        dropper = AnswerDropper(app.port, drop_every)
        for n in range(messages):
            due = started + n / rate
            time.sleep(max(0.0, due - time.monotonic()))
            while plan and n >= plan[0][0] * messages:
                _, name, fault = plan.pop(0)
                fault()
                faults.append((round(time.monotonic() - started, 1), name))
                supervisor = threading.Thread(target=supervise, args=(name,), daemon=True)
                supervisor.start()
                supervisors.append(supervisor)
            text = f"m{n:05d}"
            # Through the app itself: Pushpin's outage is for the streams, not the posts.
            posted[text] = writer.post(
                f"{dropper.url}/rooms/{room}/messages/", {"from": "bench", "text": text}
            )
            player = players[n % len(players)]
            if writer.post(f"{dropper.url}/boards/{board}/players/{player}/score-add/") == 200:
                clicks[player] += 1
            else:
                click_errors += 1

    for supervisor in supervisors:
        supervisor.join(60)
    wait_until(lambda: _healthy(app.url), timeout=60, what="the app's health")
    stored = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, json; django.setup();"
            "from chat.models import Message;"
            f"print(json.dumps(list(Message.objects.filter(room={room!r})"
            ".order_by('event_id').values_list('event_id', 'text'))))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = json.loads(stored)
    history = {text: event_id for event_id, text in rows}
    stored_texts = [text for _, text in rows]
    final = httpx.get(f"{app.url}/boards/{board}/").json()
    expected_ids = sorted(history.values())
    wait_until(
        lambda: all(numbers(f.events)[-1:] == expected_ids[-1:] for f in chat),
        timeout=60,
        what="every chat subscriber to reach the last message",
    )
    wait_until(
        lambda: all(f.events and json.loads(f.events[-1][2]) == final for f in boards),
        timeout=60,
        what="every board subscriber to reach the final standings",
    )
    for follower in chat + boards:
        follower.stop()

    def chat_counts(f: Follower) -> dict[str, int]:
        got = numbers(f.events)
        return {
            "received": len(got),
            "lost": len(set(expected_ids) - set(got)),
            "repeated": len(got) - len(set(got)),
            "out_of_order": sum(1 for a, b in itertools.pairwise(got) if b <= a),
            "reconnects": f.reconnects,
        }

    def goes_down(f: Follower) -> int:
        seen: dict[int, int] = {}
        down = 0
        for _, _, data in f.events:
            for p in json.loads(data)["players"]:
                down += p["score"] < seen.get(p["id"], 0)
                seen[p["id"]] = p["score"]
        return down

    ok_texts = [t for t, s in posted.items() if s in (200, 201)]
    failed_texts = [t for t, s in posted.items() if s not in (200, 201)]
    per_chat = [chat_counts(f) for f in chat]
    result = {
        "messages": messages,
        "rate": rate,
        "retries": retries,
        "faults": faults,
        "answers_dropped_after_commit": dropper.dropped,
        # Every answer to every attempt, posts and clicks: status or error -> count.
        "answers": dict(sorted(writer.answers.items())),
        "answers_5xx_other_than_503": sum(
            n
            for status, n in writer.answers.items()
            if status.isdigit() and int(status) >= 500 and status != "503"
        ),
        "posts_2xx": len(ok_texts),
        "posts_failed": len(failed_texts),
        "posts_2xx_stored_exactly_once": sum(stored_texts.count(t) == 1 for t in ok_texts),
        "posts_failed_but_stored": sum(t in history for t in failed_texts),
        "stored_twice": len(stored_texts) - len(set(stored_texts)),
        "chat_subscribers": len(chat),
        "chat_lost": sum(c["lost"] for c in per_chat),
        "chat_repeated": sum(c["repeated"] for c in per_chat),
        "chat_out_of_order": sum(c["out_of_order"] for c in per_chat),
        "chat_reconnects": sum(c["reconnects"] for c in per_chat),
        "clicks_2xx": sum(clicks.values()),
        "click_errors": click_errors,
        "final_scores": {p["id"]: p["score"] for p in final["players"]},
        "scores_equal_2xx_clicks": {p["id"]: p["score"] for p in final["players"]} == clicks,
        "board_subscribers_on_final": sum(
            bool(f.events) and json.loads(f.events[-1][2]) == final for f in boards
        ),
        "board_subscribers": len(boards),
        "board_scores_went_down": sum(goes_down(f) for f in boards),
        "workdir": str(workdir),
    }
    return result


def flood(database_url: str, pool_size: int, posters: int, seconds: float) -> dict[str, Any]:
    """``posters`` threads post without pause for ``seconds`` to the app with no proxy in
    front (ASGI: a thread per request in flight), with this pool size (0: none)."""
    answers: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def poster(n: int) -> None:
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < stop_at:
                try:
                    outcome = str(
                        client.post(url, data={"from": "flood", "text": f"p{n}"}).status_code
                    )
                except httpx.HTTPError as error:
                    outcome = type(error).__name__
                with lock:
                    answers[outcome] += 1

    pool = {"DATABASE_POOL_MAX_SIZE": str(pool_size)}
    with running_app(database_url, "flood", proxy=False, app_env=pool) as (target, _):
        url = f"{target.apps[0].url}/rooms/flood-{uuid.uuid4().hex[:6]}/messages/"
        stop_at = time.monotonic() + seconds
        threads = [threading.Thread(target=poster, args=(n,)) for n in range(posters)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return {
        "posters": posters,
        "seconds": seconds,
        "answers": dict(sorted(answers.items())),
        "answers_5xx": sum(n for s, n in answers.items() if s.isdigit() and int(s) >= 500),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0, help="messages (and clicks) per second")
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--retries", choices=["keyed", "unkeyed", "none"], default="keyed")
    parser.add_argument(
        "--drop-every", type=int, default=100, help="lose every Nth write's answer (0: none)"
    )
    parser.add_argument("--scenario", choices=["faults", "flood"], default="faults")
    parser.add_argument("--posters", type=int, default=200, help="flood: concurrent posters")
    parser.add_argument("--seconds", type=float, default=20, help="flood: how long")
    args = parser.parse_args()
    if args.scenario == "flood":
        result = {
            f"pool_{size}": flood(args.database_url, size, args.posters, args.seconds)
            for size in (0, 10)
        }
    else:
        load = Load(args.messages, args.rate, args.subscribers, args.retries, args.drop_every)
        result = run(args.database_url, load)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

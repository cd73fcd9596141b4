"""`make run` (devstack.run) in every combination of PostgreSQL/SQLite and Pushpin/none.

Each case runs the real devserver in a subprocess on free ports, with a PATH
that lacks Pushpin and/or a DATABASE_URL where nothing listens, reads the URL
it prints, then checks through that URL that the chat works end to end (post,
then the message arrives over SSE) and that Ctrl-C stops every process.
apt-get is never run (RUN_NO_INSTALL=1).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from devstack import ROOT
from devstack.processes import free_port, free_port_block, port_open, wait_until
from devstack.sse import Subscriber
from tests.conftest import Subscribers, environ_without_settings

pytestmark = pytest.mark.integration

DEVSERVER_DB = f"{os.environ.get('TEST_DB_NAME', 'test_chatdemo')}_devserver"


class DevServer:
    """``python -m devstack.run`` with its output collected line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack.run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # so a failed test can stop the whole tree
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for_url(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    found = re.search(r"Open (http://\S+)", line)
                    if found:
                        return found.group(1)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    raise AssertionError("devserver printed no URL:\n" + "\n".join(self.lines))
                self._cond.wait(min(remaining, 0.5))

    def wait_for_line(self, line: str, timeout: float = 30) -> None:
        """Wait until the devserver has printed ``line`` (its start-up lines come one by one,
        after the URL too)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while line not in self.lines:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    raise AssertionError(
                        f"devserver never printed {line!r}:\n" + "\n".join(self.lines)
                    )
                self._cond.wait(min(remaining, 0.5))

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C: SIGINT to the devserver, which must stop what it started and exit."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """Stop it, whatever state a failed test left it in: Ctrl-C first, so that it stops
        the Pushpins, apps and publishers it started (each in a process group of its own,
        which a SIGKILL to its group would leave running, the publisher holding its lock
        for the next test); SIGKILL only if that does not end it."""
        if self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.interrupt()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def _free_publish_port() -> int:
    """A publish port whose neighbours (Pushpin's ZMQ inputs: -1, +1, +2) are free too."""
    return free_port_block(4) + 1


@pytest.fixture(scope="module")
def devserver_db() -> Iterator[str]:
    """A PostgreSQL database for the devserver runs, dropped afterwards."""
    yield f"postgres://postgres@127.0.0.1:5432/{DEVSERVER_DB}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DEVSERVER_DB))
        )


def _devserver_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = environ_without_settings()
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "chatdemo.settings",
            "RUN_DIR": str(tmp_path / "run"),
            "RUN_NO_INSTALL": "1",
            "APP_PORT": str(free_port()),
            "PUSHPIN_PORT": str(free_port()),
            "PUSHPIN_PUBLISH_PORT": str(_free_publish_port()),
            "DATABASE_URL": database_url,
        }
    )
    return env


@pytest.mark.parametrize("pushpin", [True, False], ids=["pushpin", "no-pushpin"])
@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_devserver_runs_chat_and_leaderboard_in_every_combination(
    database: str, pushpin: bool, devserver_db: str, tmp_path: Path, subscribers: Subscribers
) -> None:
    dead_port = free_port()
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    # Nothing listens on a fresh free port: PostgreSQL is "not there".
    env = _devserver_env(
        tmp_path,
        devserver_db
        if database == "postgresql"
        else f"postgres://postgres@127.0.0.1:{dead_port}/chatdemo",
    )
    app_port, pushpin_port = int(env["APP_PORT"]), int(env["PUSHPIN_PORT"])
    publish_port = int(env["PUSHPIN_PUBLISH_PORT"])
    if not pushpin:
        env["PATH"] = str(empty_bin)  # the devserver runs python by its full path

    server = DevServer(env)
    try:
        url = server.wait_for_url()
        db_notes = [line for line in server.lines if line.startswith("database:")]
        proxy_notes = [line for line in server.lines if line.startswith("proxy:")]
        if database == "sqlite":
            [note] = db_notes
            assert note.startswith(f"database: PostgreSQL at 127.0.0.1:{dead_port} (")
            assert note.endswith(
                f"is not usable; using SQLite at {tmp_path / 'run' / 'chatdemo.sqlite3'} instead"
            )
        else:
            assert db_notes == []
        if pushpin:
            assert proxy_notes == []
        else:
            assert proxy_notes == [
                "proxy: pushpin, zurl, condure not found; the app streams SSE itself, with no "
                "GRIP proxy in front (install Pushpin with: sudo apt-get install -y pushpin)"
            ]
        assert url == f"http://localhost:{pushpin_port if pushpin else app_port}/"

        base = url.replace("localhost", "127.0.0.1").rstrip("/")
        room = f"t-{uuid.uuid4().hex[:12]}"
        [sub] = subscribers.open(f"{base}/rooms/{room}/events/")
        # Sent twice with one Idempotency-Key (on SQLite too): stored once.
        for _ in range(2):
            posted = httpx.post(
                f"{base}/rooms/{room}/messages/",
                data={"from": "Ann", "text": "hi"},
                headers={"Idempotency-Key": f"{room}-1"},
                timeout=10,
            )
            assert posted.status_code == 200, posted.text
        assert posted.headers["Idempotent-Replayed"] == "true"
        [event] = sub.wait_count("message", 1)
        assert event.json() == posted.json()
        assert event.id == f"room-{room}:1"
        history = httpx.get(f"{base}/rooms/{room}/messages/", timeout=10).json()
        assert history["messages"] == [posted.json()]
        _check_concurrent_chat_posts(base, room, sub)
        _check_leaderboard(base, server, subscribers)

        # Who held the stream: Pushpin (the app saw a verified Grip-Sig) or the app itself.
        app_log = (tmp_path / "run" / "app.log").read_text()
        assert f"request method=GET path=/rooms/{room}/events/ status=200" in app_log, app_log[
            -2000:
        ]
        stream_line = next(
            line for line in app_log.splitlines() if f"path=/rooms/{room}/events/" in line
        )
        assert stream_line.endswith(f"proxied={'true' if pushpin else 'false'}")

        sub.close()
        assert server.interrupt() == 0
        for port in (app_port, pushpin_port, publish_port):
            wait_until(lambda p=port: not port_open(p), timeout=10, what=f"port {port} to close")
    finally:
        server.kill()


def test_devserver_with_debug_off_runs_the_production_settings_on_localhost(
    devserver_db: str, tmp_path: Path
) -> None:
    """``DJANGO_DEBUG=0 make run``: collected static files, a generated secret key, plain
    HTTP, and the same statuses as production."""
    env = {**_devserver_env(tmp_path, devserver_db), "DJANGO_DEBUG": "0"}
    server = DevServer(env)
    try:
        base = server.wait_for_url().replace("localhost", "127.0.0.1").rstrip("/")
        key_file = tmp_path / "run" / "secret_key"
        assert f"settings: DJANGO_DEBUG is off; using the secret key in {key_file}" in server.lines
        assert key_file.stat().st_mode & 0o777 == 0o600

        home = httpx.get(f"{base}/", timeout=10)
        assert home.status_code == 200, home.text[:500]
        # Hashed names from the manifest, served by WhiteNoise from the collected files.
        [css] = re.findall(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', home.text)
        assert httpx.get(f"{base}{css}", timeout=10).status_code == 200
        assert "Strict-Transport-Security" not in home.headers
        posted = httpx.post(
            f"{base}/rooms/debug-off/messages", data={"from": "Ann", "text": "hi"}, timeout=10
        )
        assert posted.status_code == 200, posted.text
        missing = httpx.get(f"{base}/rooms//messages/", timeout=10)
        assert (missing.status_code, missing.json()["field"]) == (404, "path")
        assert server.interrupt() == 0
    finally:
        server.kill()


def _check_concurrent_chat_posts(base: str, room: str, sub: Subscriber) -> None:
    """Writers queue up on every database (SQLite: BEGIN IMMEDIATE): each message once, in order."""

    def send(i: int) -> int:
        response = httpx.post(
            f"{base}/rooms/{room}/messages/", data={"from": "Bob", "text": f"m{i}"}, timeout=30
        )
        assert response.status_code == 200, response.text
        return int(response.json()["id"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(send, range(20)))
    events = sub.wait_count("message", 21, timeout=30)
    assert [e.json()["id"] for e in events[1:]] == sorted(ids)
    assert [e.id for e in events] == [f"room-{room}:{n}" for n in range(1, 22)]


def _check_leaderboard(base: str, server: DevServer, subscribers: Subscribers) -> None:
    """The seeded board: a score-add reaches a subscriber of the board's stream."""
    [seeded] = [line for line in server.lines if line.startswith("demo data ready: leaderboard ")]
    board_id = int(seeded.split()[4])
    standings = httpx.get(f"{base}/boards/{board_id}/", timeout=10).json()
    sub = Subscriber(f"{base}/boards/{board_id}/")
    subscribers.append(sub)
    [first] = sub.wait_count("update", 1)
    assert first.json() == standings
    player = standings["players"][-1]
    added = httpx.post(f"{base}/boards/{board_id}/players/{player['id']}/score-add/", timeout=10)
    assert added.status_code == 200, added.text
    assert added.json() == {**player, "score": player["score"] + 1}
    second = sub.wait_count("update", 2)[1]
    scores = {p["id"]: p["score"] for p in second.json()["players"]}
    assert scores[player["id"]] == player["score"] + 1


def _chat_round_trip(base: str, subscribers: Subscribers, count: int = 2) -> None:
    """``count`` subscribers through ``base`` each get a message posted through it."""
    room = f"t-{uuid.uuid4().hex[:12]}"
    subs = subscribers.open(f"{base}/rooms/{room}/events/", count)
    posted = httpx.post(
        f"{base}/rooms/{room}/messages/", data={"from": "Ann", "text": "hi"}, timeout=10
    )
    assert posted.status_code == 200, posted.text
    for sub in subs:
        [event] = sub.wait_count("message", 1)
        assert event.json() == posted.json()


def test_devserver_with_proxies_0_streams_directly_though_pushpin_is_there(
    devserver_db: str, tmp_path: Path, subscribers: Subscribers
) -> None:
    env = {**_devserver_env(tmp_path, devserver_db), "PROXIES": "0"}
    server = DevServer(env)
    try:
        url = server.wait_for_url()
        assert url == f"http://localhost:{env['APP_PORT']}/"
        assert "proxy: PROXIES=0; the app streams SSE itself, with no GRIP proxy in front" in (
            server.lines
        )
        _chat_round_trip(url.replace("localhost", "127.0.0.1").rstrip("/"), subscribers)
        assert server.interrupt() == 0
    finally:
        server.kill()


def test_devserver_with_proxies_2_runs_two_pushpins_two_apps_and_a_standby_behind_haproxy(
    devserver_db: str, tmp_path: Path, subscribers: Subscribers
) -> None:
    # The ports PROXIES=2 takes (devstack.run): apps at APP_PORT and the next one; Pushpins'
    # HTTP at PUSHPIN_PORT - 9 and - 8; publish APIs at PUSHPIN_PUBLISH_PORT and + 10, each
    # with its ZMQ neighbours (-1, +1, +2); HAProxy at PUSHPIN_PORT.
    block = free_port_block(27)
    app, entry, publish = block, block + 12, block + 14
    env = {
        **_devserver_env(tmp_path, devserver_db),
        "PROXIES": "2",
        "APP_PORT": str(app),
        "PUSHPIN_PORT": str(entry),
        "PUSHPIN_PUBLISH_PORT": str(publish),
    }
    server = DevServer(env)
    try:
        url = server.wait_for_url()
        assert url == f"http://localhost:{entry}/"
        run = tmp_path / "run"
        for line in (
            f"  HAProxy :{entry} (the entry point; {run / 'haproxy'})",
            f"  Pushpin :{entry - 9}, publish API :{publish} (logs: {run / 'pushpin-1' / 'log'})",
            f"  Pushpin :{entry - 8}, publish API :{publish + 10} (logs: {run / 'pushpin-2' / 'log'})",
            f"  App :{app} (one line per request: {run / f'app-{app}.log'})",
            f"  App :{app + 1} (one line per request: {run / f'app-{app + 1}.log'})",
            f"  The standby publisher's log: {run / 'publisher-standby.log'}",
        ):
            server.wait_for_line(line)
        _chat_round_trip(url.replace("localhost", "127.0.0.1").rstrip("/"), subscribers, 4)
        health = httpx.get(f"http://127.0.0.1:{app}/healthz", timeout=10).json()["publisher"]
        assert [p["target"] for p in health["proxies"]] == [
            f"http://127.0.0.1:{publish}",
            f"http://127.0.0.1:{publish + 10}",
        ]
        assert health["standbys"] == 1
        assert server.interrupt() == 0
        for port in (app, app + 1, entry, entry - 9, entry - 8, publish, publish + 10):
            wait_until(lambda p=port: not port_open(p), timeout=10, what=f"port {port} to close")
    finally:
        server.kill()

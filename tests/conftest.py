"""Shared fixtures.

Unit tests record what would be published (``published``). Integration tests
run against the real things: a Pushpin (with zurl) started from the repo's
pushpin.conf on free ports, the app under daphne against the test database,
and PostgreSQL. A missing component fails the run with how to install it; it
never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings

from chatdemo.stack import AppServer, Pushpin, PushpinPorts, StackError, free_port, wait_until
from realtime import publish
from tests.sse import Subscriber


def pytest_sessionstart(session: pytest.Session) -> None:
    for binary in ("pushpin", "zurl", "condure"):
        if shutil.which(binary) is None:
            pytest.exit(
                f"{binary} is missing: the integration tests need a real Pushpin. "
                "Install it with: sudo apt-get install -y pushpin",
                returncode=3,
            )
    # A run stopped with SIGTERM (CI's timeout, `kill`) unwinds like Ctrl-C, so
    # fixture teardown stops the Pushpin and app processes the run started:
    # they live in their own sessions and would otherwise outlive it.
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


Published = list[tuple[str, str, Any]]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Published:
    """Record (channel, event type, payload) for each event published after commit."""
    calls: Published = []

    def record(channel: str, event_type: str, data: str, event_id: int) -> None:
        calls.append((channel, event_type, json.loads(data)))

    monkeypatch.setattr(publish, "deliver", record)
    return calls


@pytest.fixture
def room() -> str:
    """A room name no other test uses, so that Pushpin's per-channel state never leaks."""
    return f"t-{uuid.uuid4().hex[:12]}"


# --- the live stack -----------------------------------------------------------------

# An SSE endpoint: answering it takes Pushpin's proxy and handler both.
READY_PATH = "/rooms/stack-ready/events/"


class Stack:
    """Pushpin in front of the app (daphne), both against the test database."""

    def __init__(
        self, workdir: Path, app_count: int = 1, app_env: dict[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        db = django_settings.DATABASES["default"]
        self.database_url = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
        app_ports = [free_port() for _ in range(app_count)]
        self.pushpin = Pushpin(
            workdir=workdir / "pushpin",
            origins=app_ports,
            ports=PushpinPorts.free(),
            ready_path=READY_PATH,
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "chatdemo.settings",
            "DATABASE_URL": self.database_url,
            "GRIP_URL": self.pushpin.grip_url(),
            "DJANGO_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **(app_env or {}),
        }
        self.apps = [
            AppServer(port=port, env=env, log_path=workdir / f"app-{port}.log")
            for port in app_ports
        ]

    @property
    def app(self) -> AppServer:
        return self.apps[0]

    @property
    def url(self) -> str:
        """Where clients connect: Pushpin."""
        return self.pushpin.url

    def start(self) -> Stack:
        for app in self.apps:
            app.start()
        self.pushpin.start()
        return self

    def stop(self) -> None:
        self.pushpin.stop()
        for app in self.apps:
            app.stop()

    def subscribe(self, path: str, headers: dict[str, str] | None = None) -> Subscriber:
        return Subscriber(self.url + path, headers)

    def logs(self) -> str:
        parts = [
            f"--- {a.log_path}\n{a.log_path.read_text()[-4000:]}" for a in self.apps if a.log_path
        ]
        parts.append(f"--- pushpin-handler\n{self.pushpin.log()[-4000:]}")
        parts.append(f"--- pushpin-proxy\n{self.pushpin.log('pushpin-proxy')[-4000:]}")
        return "\n".join(parts)


def recovery_fetches(pushpin: Pushpin, room: str) -> int:
    """Requests for the room's recovery link that Pushpin's handler made to the app."""
    return sum(
        1
        for line in pushpin.log().splitlines()
        if f"/rooms/{room}/events/?link=next" in line and "code=200" in line
    )


def wait_first_recovery_fetch(pushpin: Pushpin, room: str) -> None:
    """Wait for the fetch of a new stream's link that Pushpin makes about a second after
    the hold; until then, that fetch would deliver whatever the test means to lose."""
    wait_until(
        lambda: recovery_fetches(pushpin, room) >= 1,
        timeout=10,
        what="Pushpin's first fetch of the new stream's link",
    )


@pytest.fixture(scope="session")
def stack(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One Pushpin + app for the session. Tests that use it must use ``live_db``."""
    live = Stack(tmp_path_factory.mktemp("stack"))
    try:
        live.start()
    except StackError as error:
        live.stop()  # whatever did start
        pytest.fail(str(error), pytrace=False)
    yield live
    live.stop()


@pytest.fixture
def live_db(transactional_db: None, settings: Any, stack: Stack) -> Stack:
    """Committed test data that the app subprocess can see; this process publishes
    to the same Pushpin as the app."""
    settings.GRIP_URL = stack.pushpin.grip_url()
    return stack


@pytest.fixture
def client_http(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client that talks to the stack through Pushpin."""
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        yield client


@pytest.fixture
def subscribers() -> Iterator[list[Subscriber]]:
    """Collects subscribers so that every stream is closed after the test."""
    opened: list[Subscriber] = []
    yield opened
    for subscriber in opened:
        subscriber.close()

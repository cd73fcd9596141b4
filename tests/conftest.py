"""Shared fixtures.

Unit tests run the publisher in this process and record what it would publish
(``published``); they need PostgreSQL and nothing else (``make unit``).
Integration tests run against the real things: a Pushpin (with zurl) started
from the repo's pushpin.conf on free ports, the app under granian (chatdemo.serve) against the
test database, and PostgreSQL. Browser tests (``e2e``) add Debian's Chromium.
A test that uses the ``stack`` or ``browser`` fixture is marked so by itself.
When the selected tests need a component that is missing, the run fails at
once with how to install it; it never skips.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import F

import devstack.stack
from chat.models import Message
from chat.services import message_post
from devstack.processes import StackError, free_port, wait_until
from devstack.pushpin import Pushpin
from devstack.servers import AppServer, PublisherServer
from devstack.sse import Subscriber
from realtime.channels import room_channel
from realtime.gripconf import grip_settings
from realtime.models import Channel, Event
from realtime.publisher import Publisher

# What each kind of test needs on PATH beyond PostgreSQL: {marker: {program: Debian package}}.
NEEDS = {
    "integration": {"pushpin": "pushpin", "zurl": "pushpin", "condure": "pushpin"},
    "e2e": {"chromium": "chromium"},
}
# Fixtures that start those components, and the marker a test that uses one gets.
MARKER_OF_FIXTURE = {"stack": "integration", "browser": "e2e"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test by what it starts, before ``-m`` selects (``make unit``)."""
    for item in items:
        for fixture, marker in MARKER_OF_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail at once, with the command that installs it, when a selected test needs a
    program that is not on PATH."""
    if session.config.option.collectonly:
        return
    missing = {
        program: package
        for marker, programs in NEEDS.items()
        if any(item.get_closest_marker(marker) for item in session.items)
        for program, package in programs.items()
        if shutil.which(program) is None
    }
    if missing:
        packages = " ".join(sorted(set(missing.values())))
        pytest.exit(
            f"{', '.join(missing)} missing from PATH: the selected integration or browser "
            f"tests need them. Install them with: sudo apt-get install -y {packages} "
            "(or run `make test` as root, which does), or run only the unit tests: make unit",
            returncode=3,
        )


def pytest_sessionstart(session: pytest.Session) -> None:
    # A run stopped with SIGTERM (CI's timeout, `kill`) unwinds like Ctrl-C, so
    # fixture teardown stops the Pushpin and app processes the run started:
    # they live in their own sessions and would otherwise outlive it.
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def environ_without_settings() -> dict[str, str]:
    """This process's environment without the app's settings (``DJANGO_*``, ``GRIP_*``,
    ``DATABASE_*``), for a subprocess that must get only the ones a test gives it."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "GRIP_", "DATABASE_"))
    }


def postgres_url(*, user: str | None = None, name: str | None = None) -> str:
    """A URL of this run's PostgreSQL: its test database (or ``name``), as its user (or ``user``)."""
    db = django_settings.DATABASES["default"]
    return (
        f"postgres://{user or db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{name or db['NAME']}"
    )


Published = list[tuple[str, str, Any]]
Drain = Callable[[], Published]


class Recorder:
    """A publisher transport that records (channel, event type, payload) instead of sending."""

    def __init__(self) -> None:
        self.sent: Published = []

    def publish(self, events: Sequence[Event]) -> None:
        self.sent.extend((e.channel.name, e.type, e.data) for e in events)

    def report(self) -> list[dict[str, Any]]:
        return []


@pytest.fixture
def published() -> Drain:
    """Run the publisher once, as its process would after a commit, and return what it
    published since the last call: (channel, event type, payload), in publish order.

    In a unit test, everything runs in one connection, so the publisher also sees
    the test's uncommitted writes; that it sees only committed ones in real life
    is tested with the real publisher process (tests/realtime/test_publisher_process.py).
    """
    recorder = Recorder()
    publisher = Publisher(recorder)

    def drain() -> Published:
        publisher.sweep()
        sent, recorder.sent = recorder.sent, []
        return sent

    return drain


@pytest.fixture
def room() -> str:
    """A room name no other test uses, so that Pushpin's per-channel state never leaks."""
    return f"t-{uuid.uuid4().hex[:12]}"


# --- the live stack -----------------------------------------------------------------


class Stack(devstack.stack.Stack):
    """Pushpin in front of the app, and the publisher, all against the test database.

    One publisher runs per database (realtime.publisher); a stack started while
    another one runs takes over publishing with :func:`publisher_paused`.
    """

    def __init__(
        self,
        workdir: Path,
        app_count: int = 1,
        app_env: dict[str, str] | None = None,
        **options: Any,
    ) -> None:
        self.database_url = postgres_url()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "chatdemo.settings",
            "DATABASE_URL": self.database_url,
            "DJANGO_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        super().__init__(workdir, env, apps=app_count, app_env=app_env, **options)


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
    with django_db_blocker.unblock():
        _wait_for_other_sessions_to_end()


def _wait_for_other_sessions_to_end() -> None:
    """PostgreSQL ends a killed client's session a moment after the client is gone; the
    test database can only be dropped once the stack's sessions have all ended."""

    def others() -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, application_name, client_port, backend_start, state, query "
                "FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            return cursor.fetchall()

    try:
        wait_until(lambda: not others(), timeout=10, what="the stack's database sessions to end")
    except StackError as error:
        raise StackError(f"{error}: {others()}") from None


@contextlib.contextmanager
def publisher_paused(stack: Stack) -> Iterator[None]:
    """Stop the session's publisher for a while, so that another one can take the database."""
    stack.publisher.stop()
    try:
        yield
    finally:
        stack.publisher.start()


@contextlib.contextmanager
def another_stack(session: Stack, other: Stack) -> Iterator[Stack]:
    """Run ``other`` (its own Pushpin, apps and publisher) in the session stack's place as
    the database's publisher; the session's publisher is back afterwards."""
    with publisher_paused(session):
        try:
            other.start()
        except StackError as error:
            other.stop()
            pytest.fail(str(error), pytrace=False)
        try:
            yield other
        finally:
            other.stop()


@contextlib.contextmanager
def publishing_to(stack: Stack, grip_url: str, workdir: Path) -> Iterator[PublisherServer]:
    """A publisher like the stack's that publishes to another proxy, in the session's one's
    place (one publisher per database)."""
    publisher = PublisherServer(
        env={**stack.env, "GRIP_URL": grip_url}, log_path=workdir / "publisher.log"
    )
    with publisher_paused(stack):
        publisher.start()
        try:
            yield publisher
        finally:
            publisher.stop()


def post_unpublished(publisher: PublisherServer, room: str, text: str) -> Message:
    """Store a message whose publish is lost: ``publisher`` counts it as published, but
    never hands it to the proxy."""
    publisher.stop()
    try:
        message = message_post(room=room, author="Ann", text=text)
        Channel.objects.filter(name=room_channel(room)).update(published_id=F("last_id"))
    finally:
        publisher.start()
    return message


@pytest.fixture
def live_db(transactional_db: None, settings: Any, stack: Stack) -> Stack:
    """Committed test data that the app subprocess can see; this process publishes
    to the same Pushpin as the app."""
    settings.GRIP_PROXIES = grip_settings(url=stack.pushpin.grip_url()).proxies
    return stack


# Rate limits for the tests that check them end to end: 3 at once, then one every 20 s,
# so that a test's requests never earn a token back while it runs.
LIMITS_ON = {"RATE_LIMIT_POSTS": "3/60s", "RATE_LIMIT_CLICKS": "3/60s"}


@pytest.fixture
def limited_stack(live_db: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own (Pushpin, app, publisher), in the session stack's place, whose app
    runs with :data:`LIMITS_ON` (the session's runs with the limits off)."""
    # A short directory: Pushpin's IPC socket paths must fit in 107 bytes.
    workdir = tmp_path_factory.mktemp("limited")
    with another_stack(live_db, Stack(workdir, app_env=LIMITS_ON)) as limited:
        yield limited


@contextlib.contextmanager
def direct_app_with(live_db: Stack, workdir: Path, **env: str) -> Iterator[AppServer]:
    """The app with no proxy (it streams SSE itself, over ASGI) and a two-connection pool,
    against the test database, with ``env`` added to its environment."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatdemo.settings",
        "DATABASE_URL": live_db.database_url,
        "GRIP_URL": "",
        "DATABASE_POOL_MAX_SIZE": "2",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    app = AppServer(port=free_port(), env=env, log_path=workdir / "app.log")
    try:
        app.start()
    except StackError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture
def direct_app(live_db: Stack, tmp_path: Path) -> Iterator[AppServer]:
    """:func:`direct_app_with` no more settings."""
    with direct_app_with(live_db, tmp_path) as app:
        yield app


@pytest.fixture
def client_http(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client that talks to the stack through Pushpin."""
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        yield client


class Subscribers(list[Subscriber]):
    """The test's subscribers, every one closed after the test."""

    def open(
        self, url: str, count: int = 1, headers: dict[str, str] | None = None
    ) -> list[Subscriber]:
        """``count`` subscribers of ``url``, each past its ``stream-open``."""
        opened = [Subscriber(url, headers) for _ in range(count)]
        self.extend(opened)
        for subscriber in opened:
            subscriber.wait_open()
        return opened


@pytest.fixture
def subscribers() -> Iterator[Subscribers]:
    """Collects subscribers so that every stream is closed after the test."""
    opened = Subscribers()
    yield opened
    for subscriber in opened:
        subscriber.close()

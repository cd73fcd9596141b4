"""Direct SSE streams (no proxy) do not each hold a database connection open.

django-eventstream reads the database in the request's thread, whose
connection would otherwise stay open as long as the stream: one PostgreSQL
connection per subscriber. Here the app has a pool of two connections and
serves four direct streams; each gets its message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chatdemo.stack import AppServer, StackError, free_port
from tests.conftest import Stack
from tests.sse import Subscriber

pytestmark = pytest.mark.integration


@pytest.fixture
def direct_app(live_db: Stack, tmp_path: Path) -> Iterator[AppServer]:
    """The app with no proxy and a two-connection pool, against the test database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatdemo.settings",
        "DATABASE_URL": live_db.database_url,
        "GRIP_URL": "",
        "DATABASE_POOL_MAX_SIZE": "2",
        "PYTHONUNBUFFERED": "1",
    }
    app = AppServer(port=free_port(), env=env, log_path=tmp_path / "app.log")
    try:
        app.start()
    except StackError as error:
        pytest.fail(str(error), pytrace=False)
    yield app
    app.stop()


def test_direct_streams_outnumbering_the_pool_all_open_and_receive(
    direct_app: AppServer, room: str, subscribers: list
) -> None:
    streams = [Subscriber(f"{direct_app.url}/rooms/{room}/events/") for _ in range(4)]
    subscribers.extend(streams)
    for stream in streams:
        stream.wait_open()
    posted = httpx.post(
        f"{direct_app.url}/rooms/{room}/messages/",
        data={"from": "Ann", "text": "to all four"},
        timeout=10,
    )
    assert posted.status_code == 200, posted.text
    for stream in streams:
        [event] = stream.wait_count("message", 1)
        assert event.json() == posted.json()

"""Direct SSE streams (no proxy): woken from the log, whoever wrote, and light on the database.

Each app process wakes its own streams when PostgreSQL notifies it of a
commit (realtime.direct). That marks django-eventstream's listeners for a
re-read, which is not a documented interface: these tests fail if a release
of django-eventstream changes it.

django-eventstream reads the database in the request's thread, whose
connection would otherwise stay open as long as the stream: one PostgreSQL
connection per subscriber. Here the app has a pool of two connections and
serves four direct streams; each gets its message.
"""

from __future__ import annotations

import httpx
import pytest
from django.db import transaction

from chat.services import message_post
from devstack.servers import AppServer
from tests.conftest import Subscribers

pytestmark = pytest.mark.integration


def test_direct_streams_outnumbering_the_pool_all_open_and_receive(
    direct_app: AppServer, room: str, subscribers: Subscribers
) -> None:
    streams = subscribers.open(f"{direct_app.url}/rooms/{room}/events/", 4)
    posted = httpx.post(
        f"{direct_app.url}/rooms/{room}/messages/",
        data={"from": "Ann", "text": "to all four"},
        timeout=10,
    )
    assert posted.status_code == 200, posted.text
    for stream in streams:
        [event] = stream.wait_count("message", 1)
        assert event.json() == posted.json()


def test_direct_streams_get_what_another_process_commits_once_each_in_order(
    direct_app: AppServer, room: str, subscribers: Subscribers
) -> None:
    """This test process writes; the app process streams: only the notification links them."""
    streams = subscribers.open(f"{direct_app.url}/rooms/{room}/events/", 2)
    for n in range(30):
        with transaction.atomic():
            message_post(room=room, author="Ann", text=str(n))
    for stream in streams:
        events = stream.wait_count("message", 30)
        assert [e.json()["text"] for e in events] == [str(n) for n in range(30)]
        assert [e.id for e in events] == [f"room-{room}:{n}" for n in range(1, 31)]

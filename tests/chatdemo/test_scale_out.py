"""Scale out: two app processes behind one Pushpin, and events sent from outside the web app.

The app processes keep no stream state: a stream is held by Pushpin, and an
event is published to Pushpin by whichever process committed it. So a
message posted to one app process reaches the streams whose GRIP
instructions came from the other, and a message posted by a management
command (a third process) reaches them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from chat.models import Message
from devstack import ROOT
from devstack.servers import AppServer
from devstack.sse import Subscriber
from tests.conftest import Stack, Subscribers, another_stack

pytestmark = pytest.mark.integration

HOSTS = ("app-1.internal", "app-2.internal")


@pytest.fixture(scope="module")
def two_apps(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two app processes behind one Pushpin.

    Pushpin sends a request to the first target of its route that answers, so
    the routes pin one host name to each process (and everything else to both,
    as a deployment would): the test then knows which process answered which
    stream's request.
    """
    live = Stack(tmp_path_factory.mktemp("two-apps"), app_count=2)
    first, second = live.apps
    live.pushpin.routes = (
        f"{HOSTS[0]} 127.0.0.1:{first.port}\n"
        f"{HOSTS[1]} 127.0.0.1:{second.port}\n"
        f"* 127.0.0.1:{first.port},127.0.0.1:{second.port}\n"
    )
    for app in live.apps:
        app.env = {**app.env, "DJANGO_ALLOWED_HOSTS": ",".join(("127.0.0.1", *HOSTS))}
    with another_stack(stack, live):
        yield live


def _served_by(app: AppServer, room: str) -> int:
    """How many of the room's streams this app process answered with GRIP instructions."""
    assert app.log_path is not None
    return sum(
        1
        for line in app.log_path.read_text().splitlines()
        if f"path=/rooms/{room}/events/ status=200" in line and line.endswith("proxied=true")
    )


def _open(
    stack: Stack, room: str, host: str, count: int, subscribers: Subscribers
) -> list[Subscriber]:
    return subscribers.open(f"{stack.url}/rooms/{room}/events/", count, {"Host": host})


def test_post_to_either_app_reaches_streams_opened_through_the_other(
    transactional_db: None, two_apps: Stack, room: str, subscribers: list
) -> None:
    first, second = two_apps.apps
    subs = _open(two_apps, room, HOSTS[0], 2, subscribers)
    subs += _open(two_apps, room, HOSTS[1], 3, subscribers)
    assert [_served_by(first, room), _served_by(second, room)] == [2, 3]

    posted = []
    for app in two_apps.apps:  # straight to each process, around Pushpin
        response = httpx.post(
            f"{app.url}/rooms/{room}/messages/",
            data={"from": "Ann", "text": f"via :{app.port}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        posted.append(response.json())
    for sub in subs:
        events = sub.wait_count("message", 2)
        assert [e.json() for e in events] == posted
        assert [e.id for e in events] == [f"room-{room}:1", f"room-{room}:2"]


def test_chat_say_command_reaches_subscribers_through_pushpin(
    live_db: Stack, room: str, subscribers: Subscribers
) -> None:
    subs = subscribers.open(f"{live_db.url}/rooms/{room}/events/", 2)
    result = _chat_say(live_db, room, "ops", "deploy at 17:00")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["from"] == "ops"
    assert printed["text"] == "deploy at 17:00"
    for sub in subs:
        [event] = sub.wait_count("message", 1)
        assert event.json() == printed
        assert event.id == f"room-{room}:1"


def test_chat_say_bad_input_names_the_field_and_stores_nothing(live_db: Stack, room: str) -> None:
    result = _chat_say(live_db, room, "ops", "   ")
    assert result.returncode == 1
    assert "CommandError: text: must not be blank" in result.stderr
    assert not Message.objects.filter(room=room).exists()


def _chat_say(stack: Stack, room: str, nick: str, text: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatdemo.settings",
        "DATABASE_URL": stack.database_url,
        "GRIP_URL": stack.pushpin.grip_url(),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "chat_say", room, nick, text],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

"""Typing events end to end through the real Pushpin: live only, with no id, and never in
the way of the stored events' id/prev-id sequence, its recovery or idle streams."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from django.db import transaction

from chat.services import message_post
from devstack.processes import wait_until
from devstack.sse import Subscriber
from tests.chat.test_integration import post
from tests.conftest import (
    Stack,
    Subscribers,
    another_stack,
    post_unpublished,
    recovery_fetches,
    wait_first_recovery_fetch,
)

pytestmark = pytest.mark.integration

ROUNDS = 20


def typing(client: httpx.Client, room: str, author: str) -> None:
    response = client.post(f"/rooms/{room}/typing/", data={"from": author})
    assert response.status_code == 204, response.text


def kinds(sub: Subscriber) -> list[tuple[str, str | None]]:
    """The stream's messages and typing events, in the order they came."""
    return [
        (e.event, e.id if e.event == "message" else e.json()["from"])
        for e in list(sub.events)
        if e.event in {"message", "typing"}
    ]


def test_typing_between_messages_leaves_their_ids_consecutive_and_starts_no_recovery(
    live_db: Stack, client_http: httpx.Client, room: str, subscribers: Subscribers
) -> None:
    [sub] = subscribers.open(f"{live_db.url}/rooms/{room}/events/")
    wait_first_recovery_fetch(live_db.pushpin, room)
    fetches = recovery_fetches(live_db.pushpin, room)
    for n in range(1, ROUNDS + 1):
        typing(client_http, room, f"t{n}")
        # Each typing event is delivered before the next message is posted, so the
        # stream's order is known: the two kinds alternate on the one connection.
        sub.wait_count("typing", n)
        post(client_http, room, "Ann", f"m{n}")
        sub.wait_count("message", n)
    typing(client_http, room, "last")
    sub.wait_count("typing", ROUNDS + 1)

    expected: list[tuple[str, str | None]] = []
    for n in range(1, ROUNDS + 1):
        expected += [("typing", f"t{n}"), ("message", f"room-{room}:{n}")]
    assert kinds(sub) == [*expected, ("typing", "last")]
    # No id on a typing event, so the resume point stays on the last message.
    assert [e.id for e in sub.of_type("typing")] == [None] * (ROUNDS + 1)
    assert sub.last_id == f"room-{room}:{ROUNDS}"
    assert recovery_fetches(live_db.pushpin, room) == fetches


def test_a_resumed_stream_gets_the_missed_messages_and_no_typing(
    live_db: Stack, client_http: httpx.Client, room: str, subscribers: Subscribers
) -> None:
    [first] = subscribers.open(f"{live_db.url}/rooms/{room}/events/")
    post(client_http, room, "Ann", "seen")
    [seen] = first.wait_count("message", 1)
    first.close()
    missed = []
    for n in range(2):
        typing(client_http, room, f"away{n}")
        missed.append(post(client_http, room, "Bob", f"missed {n}"))

    again = live_db.subscribe(f"/rooms/{room}/events/", {"Last-Event-ID": seen.id or ""})
    subscribers.append(again)
    assert [e.json() for e in again.wait_count("message", 2)] == missed
    # A live message after the resume: a replayed typing event would come before it.
    live = post(client_http, room, "Bob", "live")
    assert [e.json() for e in again.wait_count("message", 3)] == [*missed, live]
    assert again.of_type("typing") == []


def test_a_lost_message_is_recovered_while_typing_flows_and_typing_goes_on_after(
    live_db: Stack, client_http: httpx.Client, room: str, subscribers: Subscribers
) -> None:
    """The recovery answer subscribes the stream to both channels again: Pushpin drops a
    channel an answer leaves out."""
    [sub] = subscribers.open(f"{live_db.url}/rooms/{room}/events/")
    wait_first_recovery_fetch(live_db.pushpin, room)
    fetches = recovery_fetches(live_db.pushpin, room)
    post_unpublished(live_db.publisher, room, "publish lost")
    typing(client_http, room, "before")
    sub.wait_count("typing", 1)
    with transaction.atomic():
        message_post(room=room, author="Ann", text="next")
    events = sub.wait_count("message", 2, timeout=20)
    assert [(e.id, e.json()["text"]) for e in events] == [
        (f"room-{room}:1", "publish lost"),
        (f"room-{room}:2", "next"),
    ]
    assert recovery_fetches(live_db.pushpin, room) == fetches + 1
    typing(client_http, room, "after")
    assert [e.json() for e in sub.wait_count("typing", 2)] == [
        {"from": "before"},
        {"from": "after"},
    ]


NEXT_LINK_SECONDS = 2


@pytest.fixture
def short_link_stack(live_db: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose streams' links Pushpin fetches again every 2 s when idle."""
    workdir = tmp_path_factory.mktemp("link")
    other = Stack(workdir, app_env={"EVENTSTREAM_NEXT_LINK_TIMEOUT": str(NEXT_LINK_SECONDS)})
    with another_stack(live_db, other) as started:
        yield started


def test_an_idle_stream_is_fetched_again_on_time_and_still_gets_both_kinds(
    short_link_stack: Stack, room: str, subscribers: Subscribers
) -> None:
    stack = short_link_stack
    [sub] = subscribers.open(f"{stack.url}/rooms/{room}/events/")
    wait_first_recovery_fetch(stack.pushpin, room)
    # Idle: Pushpin comes back for the link every NEXT_LINK_SECONDS, as with one channel.
    wait_until(
        lambda: recovery_fetches(stack.pushpin, room) >= 3,
        timeout=4 * NEXT_LINK_SECONDS + 5,
        what="two more fetches of the idle stream's link",
    )
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        typing(client, room, "Ann")
        sub.wait_count("typing", 1)
        message = post(client, room, "Ann", "after idling")
    [event] = sub.wait_count("message", 1)
    assert (event.id, event.json()) == (f"room-{room}:1", message)
    assert sub.of_type("stream-reset") == []

"""The publisher process, for real: it publishes only what is committed, one runs at a
time, and one killed at any moment is replaced without a gap or a repeat."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from django.db import transaction

from chat.services import message_post
from devstack.processes import wait_until
from devstack.servers import PublisherServer
from devstack.sse import Subscriber
from tests.conftest import Stack, Subscribers, publisher_paused

pytestmark = pytest.mark.integration


def numbers(sub: Subscriber) -> list[int]:
    return [int((e.id or "").rpartition(":")[2]) for e in sub.of_type("message")]


def open_stream(stack: Stack, room: str, subscribers: Subscribers) -> Subscriber:
    [sub] = subscribers.open(f"{stack.url}/rooms/{room}/events/")
    return sub


def test_an_open_transaction_is_published_only_once_it_commits(
    live_db: Stack, room: str, subscribers: Subscribers
) -> None:
    sub = open_stream(live_db, room, subscribers)
    with transaction.atomic():
        message_post(room=room, author="Ann", text="held")
        # The publisher's own connection cannot see it yet, and has not been told.
        with pytest.raises(AssertionError, match="timed out"):
            sub.wait_count("message", 1, timeout=1)
    [event] = sub.wait_count("message", 1)
    assert event.json()["text"] == "held"


def test_a_second_publisher_waits_and_takes_over_when_the_first_is_killed(
    live_db: Stack, room: str, subscribers: Subscribers, tmp_path: Path
) -> None:
    sub = open_stream(live_db, room, subscribers)
    standby = PublisherServer(env=live_db.env, log_path=tmp_path / "standby.log")
    with publisher_paused(live_db):
        # The session's publisher is back in the pause's place once this block ends;
        # here it runs as the first publisher, and the standby comes second.
        first = PublisherServer(env=live_db.env, log_path=tmp_path / "first.log").start()
        standby.start(wait_active=False)
        try:
            wait_until(
                lambda: "publisher standby" in standby.process_log(),
                timeout=10,
                what="the second publisher to wait",
            )
            with transaction.atomic():
                message_post(room=room, author="Ann", text="one")
            sub.wait_count("message", 1)
            assert first.process is not None
            os.killpg(first.process.pid, signal.SIGKILL)
            with transaction.atomic():
                message_post(room=room, author="Ann", text="two")
            wait_until(
                lambda: PublisherServer.ACTIVE in standby.process_log(),
                timeout=20,
                what="the standby to become the publisher",
            )
            sub.wait_count("message", 2, timeout=20)
        finally:
            first.stop()
            standby.stop()
    assert numbers(sub) == [1, 2]
    assert [e.json()["text"] for e in sub.of_type("message")] == ["one", "two"]


def test_a_publisher_killed_under_load_is_restarted_without_a_gap_or_a_repeat(
    live_db: Stack, room: str, subscribers: Subscribers
) -> None:
    subs = [open_stream(live_db, room, subscribers) for _ in range(5)]
    total = 300
    killed = 0
    for n in range(1, total + 1):
        with transaction.atomic():
            message_post(room=room, author="Ann", text=str(n))
        if n % 100 == 50:
            process = live_db.publisher.process
            assert process is not None
            os.killpg(process.pid, signal.SIGKILL)
            live_db.publisher.stop()
            live_db.publisher.start()
            killed += 1
    assert killed == 3
    for sub in subs:
        sub.wait_for(lambda s: total in numbers(s), timeout=30, what="the last message")
    assert {tuple(numbers(s)) for s in subs} == {tuple(range(1, total + 1))}

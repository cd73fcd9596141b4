"""A delivery that Pushpin itself drops is still delivered, from the database.

Pushpin drops a delivery without telling anyone when its handler queue is over
``message_hwm`` (the publisher got 200). Here a Pushpin with a one-delivery
queue and one delivery per second drops the second of two publishes that
arrive within the same second. (Events committed together go to Pushpin as one
item, realtime.proxy.items_of: here each is published on its own.) The next publish's ``prev-id`` reveals the gap to the
subscriber's session, which fetches the missing event through its recovery
link (``?link=next``) from the app, which reads it from PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import transaction

from chat.services import message_post
from devstack.processes import StackError, wait_until
from devstack.pushpin import Pushpin, PushpinPorts
from devstack.stack import READY_PATH
from realtime.channels import room_channel
from realtime.models import Channel
from tests.conftest import (
    Stack,
    Subscribers,
    publishing_to,
    recovery_fetches,
    wait_first_recovery_fetch,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def dropping_pushpin(live_db: Stack, tmp_path: Path) -> Iterator[Pushpin]:
    """The repo's pushpin.conf with a handler queue of one delivery, drained once a second,
    in front of the session's app; a publisher of its own publishes to it."""
    pushpin = Pushpin(
        workdir=tmp_path / "pushpin",
        origins=[live_db.app.port],
        ports=PushpinPorts.free(),
        overrides={"handler": {"message_rate": "1", "message_hwm": "1"}},
        ready_path=READY_PATH,
    )
    try:
        pushpin.start()
    except StackError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        with publishing_to(live_db, pushpin.grip_url(), tmp_path):
            yield pushpin
    finally:
        pushpin.stop()


def published_id(room: str) -> int:
    return Channel.objects.get(name=room_channel(room)).published_id


def test_delivery_dropped_over_message_hwm_is_recovered_from_the_database(
    dropping_pushpin: Pushpin, room: str, subscribers: Subscribers
) -> None:
    [sub] = subscribers.open(f"{dropping_pushpin.url}/rooms/{room}/events/")
    wait_first_recovery_fetch(dropping_pushpin, room)
    assert recovery_fetches(dropping_pushpin, room) == 1

    with transaction.atomic():
        message_post(room=room, author="Ann", text="one")
    sub.wait_count("message", 1)

    # Two publishes that reach Pushpin within the same second: "two" fills the
    # one-delivery queue and "three" is dropped.
    with transaction.atomic():
        message_post(room=room, author="Ann", text="two")
    wait_until(lambda: published_id(room) == 2, timeout=10, what="the publish of two")
    with transaction.atomic():
        message_post(room=room, author="Ann", text="three")
    sub.wait_count("message", 2)
    assert [e.json()["text"] for e in sub.of_type("message")] == ["one", "two"]
    assert recovery_fetches(dropping_pushpin, room) == 1

    with transaction.atomic():
        message_post(room=room, author="Ann", text="four")
    events = sub.wait_count("message", 4, timeout=20)
    assert [e.json()["text"] for e in events] == ["one", "two", "three", "four"]
    assert [e.id for e in events] == [f"room-{room}:{n}" for n in range(1, 5)]
    assert recovery_fetches(dropping_pushpin, room) == 2

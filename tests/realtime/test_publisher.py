"""The publisher's passes, in this process: order, batches, the cursor, retries, snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from django.db import transaction

from devstack.processes import wait_until
from realtime import log, snapshots
from realtime.models import Channel, Event
from realtime.notify import Commits
from realtime.proxy import PublishError
from realtime.publisher import Publisher

pytestmark = pytest.mark.django_db


class Proxy:
    """Records what is published; refuses the batches asked for."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.refuse = 0

    def publish(self, events: Sequence[Event]) -> None:
        if self.refuse:
            self.refuse -= 1
            raise PublishError("the proxy is restarting")
        self.batches.append([(e.channel.name, e.seq) for e in events])

    def report(self) -> list[dict[str, Any]]:
        return []


def send(channel: str, count: int) -> None:
    for n in range(count):
        with transaction.atomic():
            log.lock_channel(channel)
            log.send(channel, "message", {"n": n})


def published_ids() -> dict[str, int]:
    return dict(Channel.objects.values_list("name", "published_id"))


def test_publishes_each_channel_in_order_in_batches_and_remembers_how_far(settings: Any) -> None:
    settings.REALTIME_PUBLISH_BATCH = 2
    send("room-a", 5)
    send("room-b", 1)
    proxy = Proxy()
    publisher = Publisher(proxy)
    assert publisher.publish_pending() == 6
    assert sorted(proxy.batches) == [
        [("room-a", 1), ("room-a", 2)],
        [("room-a", 3), ("room-a", 4)],
        [("room-a", 5)],
        [("room-b", 1)],
    ]
    assert published_ids() == {"room-a": 5, "room-b": 1}
    assert Publisher(proxy).publish_pending() == 0  # a new process starts where it stopped


def test_a_refused_batch_is_sent_again_from_its_first_event(settings: Any) -> None:
    settings.REALTIME_PUBLISH_BATCH = 2
    send("room-a", 3)
    proxy = Proxy()
    publisher = Publisher(proxy)
    publisher.publish_pending()
    send("room-a", 2)
    proxy.refuse = 1
    with pytest.raises(PublishError):
        publisher.publish_pending()
    assert published_ids() == {"room-a": 3}
    publisher.publish_pending()
    assert proxy.batches == [
        [("room-a", 1), ("room-a", 2)],
        [("room-a", 3)],
        [("room-a", 4), ("room-a", 5)],
    ]


def test_only_the_named_channels_are_published() -> None:
    send("room-a", 1)
    send("room-b", 1)
    proxy = Proxy()
    assert Publisher(proxy).publish_pending(["room-b"]) == 1
    assert proxy.batches == [[("room-b", 1)]]


def test_snapshots_are_taken_at_most_once_per_interval_and_never_forgotten(
    settings: Any,
) -> None:
    settings.REALTIME_SNAPSHOT_INTERVAL_MS = 300
    snapshots.register("snap-", record_snapshot, every=list)
    _snapshots.clear()
    publisher = Publisher(Proxy())
    publisher.run_once(Commits(states={"snap-1", "room-a"}))
    publisher.run_once(Commits(states={"snap-1"}))  # within the interval: it waits
    publisher.run_once(Commits(states={"snap-2"}))
    assert _snapshots == ["snap-1", "snap-2"]
    wait_until(
        lambda: publisher.run_once(Commits()) is not None and _snapshots.count("snap-1") == 2,
        timeout=5,
        what="snap-1's second snapshot, once the interval has passed",
    )
    assert _snapshots == ["snap-1", "snap-2", "snap-1"]


def test_an_event_on_a_snapshotted_channel_takes_no_snapshot() -> None:
    """The publisher's own snapshot notifies as an event: it must not schedule another."""
    snapshots.register("snap-", record_snapshot, every=list)
    _snapshots.clear()
    publisher = Publisher(Proxy())
    publisher.run_once(Commits(events={"snap-1"}))
    publisher.run_once(Commits())
    assert _snapshots == []
    assert publisher.wait_seconds() == publisher.poll_seconds  # nothing is due


_snapshots: list[str] = []


def record_snapshot(channel: str) -> None:
    _snapshots.append(channel)

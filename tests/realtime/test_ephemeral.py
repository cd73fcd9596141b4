"""Ephemeral events in this process: the throttle, and the notification that carries them."""

from __future__ import annotations

from typing import Any

import pytest

from base.errors import RateLimited
from realtime import ephemeral, notify
from realtime.models import Channel, Event
from realtime.notify import Commits, Ephemeral


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_throttle_allows_one_per_key_per_interval() -> None:
    clock = Clock()
    throttle = ephemeral.Throttle(every=2.0, clock=clock)
    assert throttle.take("a") == 0.0
    clock.now += 0.5
    assert throttle.take("a") == 1.5
    assert throttle.take("b") == 0.0
    clock.now += 1.5
    assert throttle.take("a") == 0.0
    assert throttle.take("a") == 2.0


def test_throttle_forgets_the_keys_of_past_intervals() -> None:
    clock = Clock()
    throttle = ephemeral.Throttle(every=2.0, clock=clock)
    for n in range(1000):
        throttle.take(str(n))
    clock.now += 2.0
    throttle.take("new")
    assert list(throttle._last) == ["new"]


@pytest.mark.django_db
def test_a_refused_send_raises_rate_limited_and_sends_no_query(
    django_assert_num_queries: Any,
) -> None:
    throttle = ephemeral.Throttle(every=2.0, clock=Clock())
    throttle.take("k")
    with pytest.raises(RateLimited) as error, django_assert_num_queries(0):
        ephemeral.send("room-a", "typing", {"from": "Ann"}, throttle=throttle, key="k")
    assert (error.value.field, error.value.retry_after) == ("rate", 2)


def test_commits_read_an_ephemeral_notification_in_order() -> None:
    commits = Commits()
    commits.add('ephemeral:["room-a", "typing", "{\\"from\\": \\"Ann\\"}"]')
    commits.add("room-a")
    commits.add('ephemeral:["room-b", "typing", "{\\"from\\": \\"Bob\\"}"]')
    assert commits == Commits(
        events={"room-a"},
        ephemeral=[
            Ephemeral("room-a", "typing", '{"from": "Ann"}'),
            Ephemeral("room-b", "typing", '{"from": "Bob"}'),
        ],
    )


@pytest.mark.django_db
def test_notify_ephemeral_over_the_payload_limit_raises_and_sends_nothing() -> None:
    with pytest.raises(ValueError, match="over 7999 bytes"):
        notify.notify_ephemeral("room-a", "typing", "x" * 8000)


@pytest.mark.django_db(transaction=True)  # the notification, heard from another connection
def test_send_notifies_the_event_whole_at_once_and_stores_nothing() -> None:
    throttle = ephemeral.Throttle(every=2.0)
    with notify.listening() as listener:
        ephemeral.send("room-a", "typing", {"from": "Ann é"}, throttle=throttle, key="k")
        assert notify.wait(listener, 5) == Commits(
            ephemeral=[Ephemeral("room-a", "typing", '{"from": "Ann \\u00e9"}')]
        )
    assert not Event.objects.exists()
    assert not Channel.objects.exists()

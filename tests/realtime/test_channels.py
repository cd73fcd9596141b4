"""Channel names: any room name makes a channel that SSE ids and Pushpin carry as is."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django_eventstream.utils import make_id, parse_last_event_id

from realtime import channels as realtime


@pytest.mark.parametrize("room", ["default", "A-b_9", "team.chat", "x" * 100])
def test_room_channel_of_a_plain_name_is_readable(room: str) -> None:
    assert realtime.room_channel(room) == f"room-{room}"


@pytest.mark.parametrize(
    "room", ["café", "a:b", "a,b", "with space", "100%", "a~b", "x" * 99 + "é"]
)
def test_room_channel_of_any_other_name_needs_no_escaping(room: str) -> None:
    """Nothing in it that an SSE id or Pushpin would need to escape: no "%", ":" or ","."""
    channel = realtime.room_channel(room)
    assert re.fullmatch(r"room~[0-9a-f]{32}", channel)
    assert quote(channel) == channel
    assert make_id({channel: 7}) == f"{channel}:7"
    assert parse_last_event_id(make_id({channel: 7})) == {channel: "7"}


def test_room_channel_names_differ_for_different_rooms() -> None:
    rooms = ["café", "cafe", "a:b", "a,b", "a b", "room~x", "a~b"]
    assert len({realtime.room_channel(r) for r in rooms}) == len(rooms)

"""What the publisher hands the proxy: runs of events as items, items packed into requests."""

from __future__ import annotations

import json

from realtime.models import Channel, Event
from realtime.proxy import _ITEM_CHARS, _REQUEST_BYTES, items_of, requests_of

ROOM = Channel(pk=1, name="room-a")
BOARD = Channel(pk=2, name="board-7")


def event(channel: Channel, seq: int, text: str = "hi") -> Event:
    return Event(channel=channel, seq=seq, type="message", data={"text": text})


def test_items_of_a_run_of_one_channel_is_one_item_with_every_id_written_in() -> None:
    [item] = items_of([event(ROOM, 4, "100% %%"), event(ROOM, 5), event(ROOM, 6)])
    assert item == {
        "channel": "events-room-a",
        "id": "6",
        "prev-id": "3",
        "formats": {
            "http-stream": {
                "content": 'event: message\nid: room-a:4\ndata: {"text": "100% %%"}\n\n'
                'event: message\nid: room-a:5\ndata: {"text": "hi"}\n\n'
                'event: message\nid: room-a:6\ndata: {"text": "hi"}\n\n'
            }
        },
    }


def test_items_of_cut_a_run_where_the_channel_changes_or_an_id_is_skipped() -> None:
    items = items_of(
        [event(ROOM, 1), event(ROOM, 2), event(BOARD, 9), event(ROOM, 3), event(ROOM, 5)]
    )
    assert [(i["channel"], i["prev-id"], i["id"]) for i in items] == [
        ("events-room-a", "0", "2"),
        ("events-board-7", "8", "9"),
        ("events-room-a", "2", "3"),
        ("events-room-a", "4", "5"),
    ]


def test_items_of_cut_a_long_run_into_items_of_bounded_size_that_chain() -> None:
    big = "x" * 4_000
    events = [event(ROOM, seq, big) for seq in range(1, 101)]
    items = items_of(events)
    assert len(items) > 1
    assert all(len(i["formats"]["http-stream"]["content"]) <= _ITEM_CHARS for i in items)
    # Each item starts where the one before ended: the proxy delivers them in a chain.
    assert [i["prev-id"] for i in items] == ["0"] + [i["id"] for i in items[:-1]]
    assert items[-1]["id"] == "100"
    content = "".join(i["formats"]["http-stream"]["content"] for i in items)
    assert content.count("\nid: room-a:") == 100


def test_requests_of_stay_under_pushpins_body_limit_and_keep_the_order() -> None:
    # Non-ASCII text is escaped in the data (log.data_text): the content stays ASCII.
    events = [event(ROOM, seq, '"é\\' * 2_000) for seq in range(1, 301)]
    items = items_of(events)
    requests = requests_of(items)
    assert len(requests) > 1
    assert [i for r in requests for i in r] == items
    for request in requests:
        assert len(json.dumps({"items": request}).encode()) <= _REQUEST_BYTES


def test_requests_of_nothing_is_no_request() -> None:
    assert requests_of([]) == []

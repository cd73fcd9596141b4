"""What the publisher hands the proxy: runs of events as items, items packed into requests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devstack.processes import wait_until
from realtime.models import Channel, Event
from realtime.notify import Ephemeral
from realtime.proxy import (
    _ITEM_CHARS,
    _REQUEST_BYTES,
    EPHEMERAL_BACKLOG,
    ProxySet,
    ephemeral_items,
    items_of,
    requests_of,
)

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


def test_ephemeral_items_are_one_each_on_the_ephemeral_channel_with_no_id_nor_prev_id() -> None:
    items = ephemeral_items(
        [
            Ephemeral("room-a", "typing", '{"from": "Ann"}'),
            Ephemeral("room~3f0c", "typing", '{"from": "Bob"}'),
        ]
    )
    assert items == [
        {
            "channel": "ephemeral-room-a",
            "formats": {"http-stream": {"content": 'event: typing\ndata: {"from": "Ann"}\n\n'}},
        },
        {
            "channel": "ephemeral-room~3f0c",
            "formats": {"http-stream": {"content": 'event: typing\ndata: {"from": "Bob"}\n\n'}},
        },
    ]


class PublishAPI(ThreadingHTTPServer):
    """A proxy's publish API on a free port, in a thread: it takes stored events' items
    at once, and holds every request of ephemeral ones until ``release`` is set, then
    answers them 500."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PublishHandler)
        self.items: list[dict[str, Any]] = []
        self.ephemeral_requests = 0
        self.release = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def entry(self) -> dict[str, Any]:
        return {"control_uri": f"http://127.0.0.1:{self.server_address[1]}"}


class _PublishHandler(BaseHTTPRequestHandler):
    server: PublishAPI

    def do_POST(self) -> None:
        items = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["items"]
        if any(item["channel"].startswith("ephemeral-") for item in items):
            with self.server.lock:
                self.server.ephemeral_requests += 1
            self.server.release.wait(10)
            self.send_response(500)
        else:
            with self.server.lock:
                self.server.items.extend(items)
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def all_free(slots: threading.Semaphore) -> bool:
    """Whether none of the ``EPHEMERAL_BACKLOG`` slots is taken (it leaves them free)."""
    taken = [slots.acquire(blocking=False) for _ in range(EPHEMERAL_BACKLOG)]
    for _ in range(sum(taken)):
        slots.release()
    return all(taken)


def test_an_ephemeral_publish_that_hangs_then_fails_holds_up_and_fails_no_stored_event(
    settings: Any,
) -> None:
    settings.REALTIME_PUBLISH_TIMEOUT_MS = 5000
    api = PublishAPI()
    proxies = ProxySet([api.entry])
    try:
        typing = [Ephemeral("room-a", "typing", '{"from": "Ann"}')]
        started = time.monotonic()
        assert proxies.publish_ephemeral(typing) == 1
        wait_until(lambda: api.ephemeral_requests == 1, timeout=5, what="the ephemeral request")
        proxies.publish([event(ROOM, 1), event(ROOM, 2)])
        assert time.monotonic() - started < 2, "the stored events did not wait"
        assert [(i["channel"], i["id"], i["prev-id"]) for i in api.items] == [
            ("events-room-a", "2", "0")
        ]
        # Past the backlog, ephemeral events are dropped, not queued.
        handed = [proxies.publish_ephemeral(typing) for _ in range(EPHEMERAL_BACKLOG)]
        assert handed == [1] * (EPHEMERAL_BACKLOG - 1) + [0]
        api.release.set()  # each is answered 500: lost, never sent again
        wait_until(
            lambda: all_free(proxies.proxies[0].ephemeral_slots),
            timeout=10,
            what="the ephemeral requests to end",
        )
        assert api.ephemeral_requests == EPHEMERAL_BACKLOG
        assert proxies.report()[0]["up"] is True
        proxies.publish([event(ROOM, 3)])
        assert [i["id"] for i in api.items] == ["2", "3"]
    finally:
        api.release.set()
        proxies.close()
        api.shutdown()
        api.server_close()

"""The chat end to end: real Pushpin, the app under granian, PostgreSQL."""

from __future__ import annotations

import concurrent.futures
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from django.db import transaction

from chat.services import message_delete, message_post
from devstack.servers import AppServer
from realtime import channels as realtime
from tests.conftest import Stack, Subscribers, post_unpublished

pytestmark = pytest.mark.integration


def post(client: httpx.Client, room: str, author: str, text: str) -> dict[str, Any]:
    response = client.post(f"/rooms/{room}/messages/", data={"from": author, "text": text})
    assert response.status_code == 200, response.text
    return response.json()


def test_events_through_pushpin_are_held_by_the_proxy(
    live_db: Stack, room: str, subscribers: Subscribers
) -> None:
    [sub] = subscribers.open(f"{live_db.url}/rooms/{room}/events/")
    assert sub.status == 200
    assert sub.response_headers is not None
    assert sub.response_headers["content-type"].startswith("text/event-stream")
    # Pushpin consumed the GRIP instructions: none reach the client.
    assert not any(name.lower().startswith("grip-") for name in sub.response_headers)


def test_post_reaches_two_independent_subscribers(
    live_db: Stack, client_http: httpx.Client, room: str, subscribers: Subscribers
) -> None:
    subs = subscribers.open(f"{live_db.url}/rooms/{room}/events/", 2)
    message = post(client_http, room, "Ann", "hello both")
    for sub in subs:
        [event] = sub.wait_count("message", 1)
        assert event.json() == message
        assert event.id == f"room-{room}:1"


def test_concurrent_posts_reach_every_subscriber_once_in_id_order(
    live_db: Stack, room: str, subscribers: Subscribers
) -> None:
    subs = subscribers.open(f"{live_db.url}/rooms/{room}/events/", 3)

    def send(i: int) -> int:
        with httpx.Client(base_url=live_db.url, timeout=20) as client:
            return int(post(client, room, f"p{i % 8}", f"message {i}")["id"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        ids = list(pool.map(send, range(50)))

    for sub in subs:
        events = sub.wait_count("message", 50, timeout=30)
        received = [e.json()["id"] for e in events]
        assert received == sorted(ids), "every message exactly once, in id order"
        assert [e.id for e in events] == [f"room-{room}:{n}" for n in range(1, 51)]


def test_resume_with_last_event_id_delivers_exactly_the_missed(
    live_db: Stack, client_http: httpx.Client, room: str, subscribers: Subscribers
) -> None:
    [first] = subscribers.open(f"{live_db.url}/rooms/{room}/events/")
    sent = [post(client_http, room, "Ann", f"m{i}") for i in range(3)]
    seen = first.wait_count("message", 3)
    resume_from = seen[1].id  # as if the client dropped after the second message
    first.close()
    missed = [post(client_http, room, "Bob", f"while away {i}") for i in range(2)]

    for headers, path in (
        ({"Last-Event-ID": resume_from}, f"/rooms/{room}/events/"),
        ({}, f"/rooms/{room}/events/?lastEventId={resume_from}"),
    ):
        again = live_db.subscribe(path, headers)
        subscribers.append(again)
        events = again.wait_count("message", 3)
        assert [e.json() for e in events] == [sent[2], *missed]
        assert again.of_type("stream-reset") == []


def test_resume_from_unknown_event_gets_stream_reset(
    live_db: Stack, room: str, subscribers: Subscribers
) -> None:
    with transaction.atomic():
        message_post(room=room, author="Ann", text="one")
    sub = live_db.subscribe(f"/rooms/{room}/events/", {"Last-Event-ID": f"room-{room}:999"})
    subscribers.append(sub)
    [reset] = sub.wait_count("stream-reset", 1)
    assert reset.json() == {"channels": [f"room-{room}"]}
    assert reset.id == f"room-{room}:1"


def test_history_resume_point_then_stream_has_no_gap_or_duplicate(
    live_db: Stack, client_http: httpx.Client, room: str, subscribers: Subscribers
) -> None:
    post(client_http, room, "Ann", "before")
    history = client_http.get(f"/rooms/{room}/messages/").json()
    after = post(client_http, room, "Ann", "after")
    sub = live_db.subscribe(f"/rooms/{room}/events/?lastEventId={history['last-event-id']}")
    subscribers.append(sub)
    [event] = sub.wait_count("message", 1)
    assert event.json() == after
    late = post(client_http, room, "Ann", "live")
    assert [e.json() for e in sub.wait_count("message", 2)] == [after, late]


def test_rolled_back_transaction_publishes_nothing(
    live_db: Stack, client_http: httpx.Client, room: str, subscribers: Subscribers
) -> None:
    [sub] = subscribers.open(f"{live_db.url}/rooms/{room}/events/")
    with pytest.raises(RuntimeError), transaction.atomic():
        message_post(room=room, author="Ann", text="rolled back")
        raise RuntimeError("abort")
    # A committed marker after the rollback: once it arrives, anything the
    # rolled-back write had published would have arrived before it.
    with transaction.atomic():
        marker = message_post(room=room, author="Ann", text="committed")
    events = sub.wait_count("message", 1)
    assert [e.json()["text"] for e in events] == ["committed"]
    assert events[0].id == f"room-{room}:{marker.event_id}"
    history = client_http.get(f"/rooms/{room}/messages/").json()["messages"]
    assert [m["text"] for m in history] == ["committed"]


def test_failed_publish_is_recovered_from_the_database(
    live_db: Stack, room: str, subscribers: Subscribers
) -> None:
    """A committed message whose publish never reaches Pushpin is still delivered:
    the next publish's prev-id reveals the gap and Pushpin fetches it from the app."""
    [sub] = subscribers.open(f"{live_db.url}/rooms/{room}/events/")
    lost = post_unpublished(live_db.publisher, room, "publish lost")
    with transaction.atomic():
        message_post(room=room, author="Ann", text="next")
    events = sub.wait_count("message", 2, timeout=20)
    assert [e.json()["text"] for e in events] == ["publish lost", "next"]
    assert events[0].json()["id"] == lost.pk


def test_events_published_together_arrive_as_stored_each_with_its_id(
    live_db: Stack, room: str, subscribers: Subscribers
) -> None:
    """Events that wait for the publisher go to the proxy as one item, their ids written
    in, and no proxy filter: ``%`` arrives as it was sent, live and on resume."""
    [live] = subscribers.open(f"{live_db.url}/rooms/{room}/events/")
    texts = ["100%", "%%", "%I", "%(events-x)s", "plain"]
    live_db.publisher.stop()
    try:
        sent = [message_post(room=room, author="Ann", text=t) for t in texts]
    finally:
        live_db.publisher.start()
    events = live.wait_count("message", len(texts), timeout=20)
    assert [e.json()["text"] for e in events] == texts
    assert [e.id for e in events] == [f"room-{room}:{n}" for n in range(1, 6)]
    assert [e.json()["id"] for e in events] == [m.pk for m in sent]
    resumed = live_db.subscribe(f"/rooms/{room}/events/", {"Last-Event-ID": f"room-{room}:1"})
    subscribers.append(resumed)
    again = resumed.wait_count("message", 4)
    assert [(e.id, e.json()["text"]) for e in again] == [
        (e.id, e.json()["text"]) for e in events[1:]
    ]


def test_pushpin_restart_client_resumes_without_loss(
    live_db: Stack, client_http: httpx.Client, room: str, subscribers: Subscribers
) -> None:
    [sub] = subscribers.open(f"{live_db.url}/rooms/{room}/events/")
    first = post(client_http, room, "Ann", "before restart")
    [seen] = sub.wait_count("message", 1)
    live_db.pushpin.restart()
    sub.wait_for(lambda s: s.closed, timeout=10, what="the stream to end with Pushpin")
    with httpx.Client(base_url=live_db.url, timeout=10) as client:
        during = post(client, room, "Bob", "after restart")
    again = live_db.subscribe(f"/rooms/{room}/events/", {"Last-Event-ID": seen.id or ""})
    subscribers.append(again)
    [event] = again.wait_count("message", 1)
    assert event.json() == during
    assert first["id"] < during["id"]


def test_malformed_last_event_id_through_pushpin_is_400(
    client_http: httpx.Client, room: str
) -> None:
    response = client_http.get(f"/rooms/{room}/events/", headers={"Last-Event-ID": "nonsense"})
    assert response.status_code == 400
    assert response.json()["field"] == "Last-Event-ID"


def test_direct_stream_without_proxy(
    direct_app: AppServer, room: str, subscribers: Subscribers
) -> None:
    """With no proxy configured, the app streams SSE itself over ASGI."""
    [sub] = subscribers.open(f"{direct_app.url}/rooms/{room}/events/")
    with httpx.Client(base_url=direct_app.url, timeout=10) as client:
        message = post(client, room, "Ann", "direct")
    [event] = sub.wait_count("message", 1)
    assert event.json() == message


@pytest.mark.parametrize("name", ["café.talk", "a:b,c", "what? #1 100%"])
def test_room_with_any_printable_name_streams_and_resumes_through_pushpin(
    live_db: Stack, client_http: httpx.Client, room: str, subscribers: Subscribers, name: str
) -> None:
    """Such names are percent-encoded in URLs and hashed in channel names and ids."""
    name = f"{room} {name}"
    path = f"/rooms/{quote(name)}"
    [first] = subscribers.open(f"{live_db.url}{path}/events/")
    sent = [post(client_http, quote(name), "Ann", f"m{i}") for i in range(2)]
    seen = first.wait_count("message", 2)
    assert [e.json() for e in seen] == sent
    assert [e.id for e in seen] == [f"{realtime.room_channel(name)}:{n}" for n in (1, 2)]
    first.close()
    missed = post(client_http, quote(name), "Bob", "while away")

    for headers, query in (
        ({"Last-Event-ID": seen[0].id}, ""),
        ({}, f"?{urlencode({'lastEventId': seen[0].id})}"),
    ):
        again = live_db.subscribe(f"{path}/events/{query}", headers)
        subscribers.append(again)
        events = again.wait_count("message", 2)
        assert [e.json() for e in events] == [sent[1], missed]
        assert again.of_type("stream-reset") == []


# --- moderation -------------------------------------------------------------------------


def test_message_delete_follows_its_message_with_the_next_id(
    live_db: Stack, client_http: httpx.Client, room: str, subscribers: Subscribers
) -> None:
    subs = subscribers.open(f"{live_db.url}/rooms/{room}/events/", 2)
    message = post(client_http, room, "Ann", "rude")
    message_delete(message_id=message["id"])
    for sub in subs:
        sub.wait_count("message-delete", 1)
        delivered = [(e.event, e.id, e.json()) for e in sub.events if e.event.startswith("message")]
        assert delivered == [
            ("message", f"room-{room}:1", message),
            ("message-delete", f"room-{room}:2", {"id": message["id"], "room": room}),
        ]
        assert sub.of_type("stream-reset") == []


def test_stream_resumed_from_before_the_delete_gets_message_delete(
    live_db: Stack, client_http: httpx.Client, room: str, subscribers: Subscribers
) -> None:
    [first] = subscribers.open(f"{live_db.url}/rooms/{room}/events/")
    gone = post(client_http, room, "Ann", "rude")
    kept = post(client_http, room, "Bob", "fine")
    seen = first.wait_count("message", 2)
    first.close()  # offline from here
    message_delete(message_id=gone["id"])
    deletion = {"id": gone["id"], "room": room}

    # Resumed after both messages: only the deletion.
    after_both = live_db.subscribe(f"/rooms/{room}/events/", {"Last-Event-ID": seen[1].id})
    subscribers.append(after_both)
    [event] = after_both.wait_count("message-delete", 1)
    assert (event.id, event.json()) == (f"room-{room}:3", deletion)
    assert after_both.of_type("message") == []

    # Resumed before the deleted message: it, the next one, then its deletion, in order.
    from_start = live_db.subscribe(f"/rooms/{room}/events/?lastEventId=room-{room}:0")
    subscribers.append(from_start)
    from_start.wait_count("message-delete", 1)
    delivered = [(e.event, e.json()) for e in from_start.events if e.event.startswith("message")]
    assert delivered == [("message", gone), ("message", kept), ("message-delete", deletion)]


def test_history_after_a_delete_then_stream_never_sends_the_deleted_message(
    live_db: Stack, client_http: httpx.Client, room: str, subscribers: Subscribers
) -> None:
    kept = post(client_http, room, "Ann", "fine")
    gone = post(client_http, room, "Bob", "rude")
    message_delete(message_id=gone["id"])
    history = client_http.get(f"/rooms/{room}/messages/").json()
    assert history == {"messages": [kept], "last-event-id": f"room-{room}:3"}

    sub = live_db.subscribe(f"/rooms/{room}/events/?lastEventId={history['last-event-id']}")
    subscribers.append(sub)
    sub.wait_open()
    late = post(client_http, room, "Cat", "live")
    [event] = sub.wait_count("message", 1)
    assert (event.id, event.json()) == (f"room-{room}:4", late)
    assert sub.of_type("message-delete") == []

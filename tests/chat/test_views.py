from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.test import Client

from chat.models import Message
from chat.services import message_delete
from chat.validation import NICKNAME_MAX_LENGTH, ROOM_MAX_LENGTH, TEXT_MAX_LENGTH
from realtime import channels as realtime
from realtime import log
from realtime.models import Event
from tests.conftest import Drain
from tests.leaderboard.test_views import proxied

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> Client:
    # enforce_csrf_checks: the API must work for clients with no session or token.
    return Client(enforce_csrf_checks=True)


def test_messages_post_form_returns_message_json(api: Client, published: Drain) -> None:
    response = api.post("/rooms/lobby/messages/", {"from": "Ann", "text": "hello"})
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "id": Message.objects.get().pk,
        "from": "Ann",
        "date": Message.objects.get().created.isoformat(),
        "text": "hello",
    }


def test_messages_post_json_body(api: Client, published: Drain) -> None:
    response = api.post(
        "/rooms/lobby/messages/",
        json.dumps({"from": "Ann", "text": "hi"}),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["text"] == "hi"


def test_messages_get_history_newest_first(api: Client, published: Drain) -> None:
    for text in ("one", "two"):
        api.post("/rooms/lobby/messages/", {"from": "Ann", "text": text})
    body = api.get("/rooms/lobby/messages/").json()
    assert [m["text"] for m in body["messages"]] == ["two", "one"]
    assert body["last-event-id"] == "room-lobby:2"


BAD_POSTS = [
    ({"text": "hi"}, "from", "is required"),
    ({"from": "Ann"}, "text", "is required"),
    ({"from": "", "text": "hi"}, "from", "must not be blank"),
    ({"from": "  ", "text": "hi"}, "from", "must not be blank"),
    ({"from": "Ann", "text": ""}, "text", "must not be blank"),
    ({"from": "Ann", "text": " \n\t "}, "text", "must not be blank"),
    (
        {"from": "A" * (NICKNAME_MAX_LENGTH + 1), "text": "hi"},
        "from",
        f"must be at most {NICKNAME_MAX_LENGTH} characters",
    ),
    (
        {"from": "Ann", "text": "x" * (TEXT_MAX_LENGTH + 1)},
        "text",
        f"must be at most {TEXT_MAX_LENGTH} characters",
    ),
    ({"from": "A\x07nn", "text": "hi"}, "from", "must not contain control characters"),
]


@pytest.mark.parametrize(("data", "field", "message"), BAD_POSTS)
def test_messages_post_bad_field_is_400_naming_it_and_stores_nothing(
    api: Client, published: Drain, data: dict, field: str, message: str
) -> None:
    response = api.post("/rooms/lobby/messages/", data)
    assert response.status_code == 400
    assert response.json() == {"error": message, "field": field}
    assert not Message.objects.exists()
    assert not Event.objects.exists()
    assert published() == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        ("{not json", "application/json", 400, "is not valid JSON"),
        ("[1, 2]", "application/json", 400, "must be a JSON object"),
        (b"\xff\xfe", "application/json", 400, "is not valid JSON"),
        ("--x\r\nbroken", "multipart/form-data", 400, "is not valid multipart/form-data"),
    ],
)
def test_messages_post_malformed_body_names_body(
    api: Client, published: Drain, body: Any, content_type: str, status: int, message: str
) -> None:
    response = api.post("/rooms/lobby/messages/", body, content_type=content_type)
    assert response.status_code == status
    assert response.json() == {"error": message, "field": "body"}
    assert not Message.objects.exists()


def test_messages_post_of_another_type_is_415_naming_content_type(
    api: Client, published: Drain
) -> None:
    response = api.post("/rooms/lobby/messages/", "from=Ann&text=hi", content_type="text/plain")
    assert (response.status_code, response.json()) == (
        415,
        {
            "error": "must be application/x-www-form-urlencoded, multipart/form-data "
            "or application/json",
            "field": "Content-Type",
        },
    )
    assert not Message.objects.exists()


def test_messages_post_json_non_string_field(api: Client, published: Drain) -> None:
    response = api.post(
        "/rooms/lobby/messages/",
        json.dumps({"from": 5, "text": "hi"}),
        content_type="application/json",
    )
    assert (response.status_code, response.json()) == (
        400,
        {"error": "must be a string", "field": "from"},
    )


def test_messages_post_oversized_body_is_413(api: Client, published: Drain, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = api.post("/rooms/lobby/messages/", {"from": "Ann", "text": "x" * 2000})
    assert (response.status_code, response.json()) == (
        413,
        {"error": "is too large", "field": "body"},
    )


@pytest.mark.parametrize("room", ["team.chat", "café", "with space", "r" * 65, "a:b", "a,b"])
def test_messages_post_to_any_printable_room(api: Client, published: Drain, room: str) -> None:
    response = api.post(f"/rooms/{quote(room)}/messages/", {"from": "Ann", "text": "hi"})
    assert response.status_code == 200
    assert Message.objects.get().room == room
    body = api.get(f"/rooms/{quote(room)}/messages/").json()
    assert [m["text"] for m in body["messages"]] == ["hi"]
    # The room's channel name has no ":" or ",", which would split the id.
    assert body["last-event-id"] == f"{realtime.room_channel(room)}:1"


def test_messages_accept_the_original_demos_inputs(api: Client, published: Drain) -> None:
    """40-character nicknames and 2,000+ character messages, which the original accepted."""
    response = api.post("/rooms/lobby/messages/", {"from": "n" * 40, "text": "x" * 2001})
    assert response.status_code == 200
    assert (response.json()["from"], len(response.json()["text"])) == ("n" * 40, 2001)


def test_messages_longest_post_in_4_byte_characters_fits_the_body_limit(
    api: Client, published: Drain
) -> None:
    nickname, text = "🦊" * NICKNAME_MAX_LENGTH, "💬" * TEXT_MAX_LENGTH
    response = api.post(
        "/rooms/lobby/messages/",
        urlencode({"from": nickname, "text": text}),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert Message.objects.get().text == text


@pytest.mark.parametrize(
    ("room", "message"),
    [
        ("%20lead", "must not start or end with a space"),
        ("r" * (ROOM_MAX_LENGTH + 1), f"must be at most {ROOM_MAX_LENGTH} characters"),
        ("bell%07", "must not contain control characters"),
        ("a%2Fb", None),  # "/" ends the path segment: no such route
    ],
)
@pytest.mark.parametrize("endpoint", ["messages", "events"])
def test_bad_room_is_400_naming_room(
    api: Client, published: Drain, room: str, message: str | None, endpoint: str
) -> None:
    response = api.get(f"/rooms/{room}/{endpoint}/")
    if message is None:
        assert response.status_code == 404
    else:
        assert response.status_code == 400
        assert response.json() == {"error": message, "field": "room"}


def test_bad_room_post_stores_nothing(api: Client, published: Drain) -> None:
    response = api.post("/rooms/bad%07room/messages/", {"from": "Ann", "text": "hi"})
    assert response.status_code == 400
    assert not Message.objects.exists()


@pytest.mark.parametrize("slash", ["/", ""])
def test_messages_answer_with_or_without_trailing_slash(
    api: Client, published: Drain, slash: str
) -> None:
    posted = api.post(f"/rooms/lobby/messages{slash}", {"from": "Ann", "text": "hi"})
    assert posted.status_code == 200
    history = api.get(f"/rooms/lobby/messages{slash}")
    assert history.json()["messages"] == [posted.json()]


@pytest.mark.parametrize("room", ["a:b", "a,b", "café:x,y"])
@pytest.mark.parametrize("slash", ["/", ""])
def test_events_resume_id_with_colon_and_comma_in_room(
    api: Client, published: Drain, room: str, slash: str
) -> None:
    api.post(f"/rooms/{quote(room)}/messages/", {"from": "Ann", "text": "one"})
    last_event_id = api.get(f"/rooms/{quote(room)}/messages/").json()["last-event-id"]
    for extra, query in (
        ({"HTTP_LAST_EVENT_ID": last_event_id}, ""),
        ({}, f"?{urlencode({'lastEventId': last_event_id})}"),
    ):
        response = api.get(f"/rooms/{quote(room)}/events{slash}{query}", **extra, **proxied())
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/event-stream")
        assert response["Grip-Hold"] == "stream"


@pytest.mark.parametrize(
    ("method", "path"), [("put", "messages"), ("delete", "messages"), ("post", "events")]
)
def test_wrong_method_is_405_json(api: Client, method: str, path: str) -> None:
    response = getattr(api, method)(f"/rooms/lobby/{path}/")
    assert response.status_code == 405
    assert response.json()["error"] == f"method {method.upper()} not allowed"
    assert "Allow" in response.headers


@pytest.mark.parametrize(
    ("header", "query"),
    [
        ("garbage", None),
        ("room-lobby:abc", None),
        ("error", None),
        (None, "room-lobby:1x"),
        (None, "::"),
    ],
)
def test_events_malformed_last_event_id_is_400(
    api: Client, header: str | None, query: str | None
) -> None:
    extra = {"HTTP_LAST_EVENT_ID": header} if header else {}
    path = "/rooms/lobby/events/" + (f"?lastEventId={query}" if query else "")
    response = api.get(path, **extra)
    assert response.status_code == 400
    assert response.json()["field"] == ("Last-Event-ID" if header else "lastEventId")


def test_events_forged_grip_sig_is_not_trusted(api: Client) -> None:
    """A client that claims to be the proxy with a bad Grip-Sig gets no GRIP headers; with a
    proxy configured, streams are served only through it."""
    response = api.get("/rooms/lobby/events/", HTTP_GRIP_SIG="forged.token.value")
    assert response.status_code == 421
    assert "Grip-Hold" not in response.headers


def test_events_without_a_proxy_configured_stream_directly(api: Client, settings: Any) -> None:
    settings.GRIP_PROXIES = []
    response = api.get("/rooms/lobby/events/")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/event-stream"
    response.close()


def test_join_sets_nickname_and_redirects_to_room() -> None:
    browser = Client()
    response = browser.post("/chat/", {"nickname": " Ann ", "room": "lobby"})
    assert (response.status_code, response.headers["Location"]) == (302, "/chat/lobby/")
    page = browser.get("/chat/lobby/")
    assert page.status_code == 200
    assert page.context["nickname"] == "Ann"


def test_join_defaults_room_to_default() -> None:
    response = Client().post("/chat/", {"nickname": "Ann", "room": ""})
    assert response.headers["Location"] == "/chat/default/"


def test_join_rejects_bad_nickname_with_400_page() -> None:
    response = Client().post("/chat/", {"nickname": "\x01", "room": "lobby"})
    assert response.status_code == 400
    assert response.context["errors"] == {"nickname": "must not contain control characters"}


def test_room_page_without_nickname_redirects_to_join() -> None:
    response = Client().get("/chat/lobby/")
    assert (response.status_code, response.headers["Location"]) == (302, "/chat/?room=lobby")


def test_room_page_escapes_history(published: Drain) -> None:
    browser = Client()
    browser.post("/chat/", {"nickname": "Ann", "room": "lobby"})
    Client().post(
        "/rooms/lobby/messages/", {"from": "<b>x</b>", "text": "<img src=x onerror=alert(1)>"}
    )
    page = browser.get("/chat/lobby/")
    html = page.content.decode()
    assert "<img src=x" not in html
    assert "<b>x</b>" not in html
    # The history is data for room.js (which renders it with textContent), in a
    # json_script that escapes "<" and ">".
    assert "\\u003Cimg src=x onerror=alert(1)\\u003E" in html
    [message] = page.context["config"]["messages"]
    assert (message["from"], message["text"]) == ("<b>x</b>", "<img src=x onerror=alert(1)>")


def _grip_sig(settings: Any) -> str:
    import time

    import jwt

    key = settings.GRIP_PROXIES[0]["key"]
    return jwt.encode({"iss": "pushpin", "exp": int(time.time()) + 60}, key, algorithm="HS256")


def test_events_through_proxy_answers_with_grip_hold_and_long_next_link(
    api: Client, settings: Any
) -> None:
    settings.EVENTSTREAM_NEXT_LINK_TIMEOUT = 600
    response = api.get("/rooms/lobby/events/", HTTP_GRIP_SIG=_grip_sig(settings))
    assert response.status_code == 200
    assert response["Grip-Hold"] == "stream"
    # The room's channel only, with the one filter our events need.
    assert response["Grip-Channel"] == "events-room-lobby; prev-id=0"
    link = response["Grip-Link"]
    assert link.startswith("</rooms/lobby/events/?link=next&recover=true&es-meta=")
    assert link.endswith(">; rel=next; timeout=600")


# --- the original demo's page links ---------------------------------------------------


def test_original_room_link_enters_the_room_as_that_nickname() -> None:
    browser = Client()
    response = browser.get(f"/{quote('café.talk')}?user=Ann")
    assert (response.status_code, response["Location"]) == (302, "/chat/caf%C3%A9.talk/")
    page = browser.get(response["Location"])
    assert (page.context["room"], page.context["nickname"]) == ("café.talk", "Ann")


def test_original_home_link_goes_to_the_default_room() -> None:
    response = Client().get("/?user=Ann+Lee")
    assert (response.status_code, response["Location"]) == (302, "/default?user=Ann+Lee")
    again = Client().get(response["Location"])
    assert again["Location"] == "/chat/default/"


def test_original_room_link_without_user_is_the_join_page_for_the_room() -> None:
    response = Client().get(f"/{quote('team.chat')}")
    assert response.status_code == 200
    assert response.context["room"] == "team.chat"


@pytest.mark.parametrize(
    ("query", "field"), [("user=", "nickname"), ("user=%07", "nickname"), ("user=Ann", "room")]
)
def test_original_room_link_with_bad_input_is_the_join_page_naming_it(
    query: str, field: str
) -> None:
    room = "bad%09room" if field == "room" else "lobby"
    response = Client().get(f"/{room}?{query}")
    assert response.status_code == 400
    assert list(response.context["errors"]) == [field]


@pytest.mark.parametrize(("path", "target"), [("/chat", "/chat/"), ("/admin", "/admin/")])
def test_own_page_without_slash_is_not_taken_for_a_room(path: str, target: str) -> None:
    response = Client().get(path)
    assert (response.status_code, response["Location"]) == (302, target)


def test_events_recovery_link_is_percent_encoded(api: Client) -> None:
    """Pushpin needs an ASCII Grip-Link; django-eventstream builds it from the decoded path."""
    room = "café? #1 100%, a:b"
    response = api.get(f"/rooms/{quote(room)}/events/", **proxied())
    link = response["Grip-Link"]
    assert link.startswith(f"</rooms/{quote(room, safe='')}/events/?link=next&"), link
    assert link.isascii()
    assert response["Grip-Channel"].startswith(f"events-{realtime.room_channel(room)}; ")


# --- moderation -------------------------------------------------------------------------


def test_messages_post_with_a_blocked_word_is_400_naming_text_and_stores_nothing(
    api: Client, published: Drain, settings: Any
) -> None:
    settings.CHAT_BLOCKED_WORDS = ["darn"]
    response = api.post("/rooms/lobby/messages/", {"from": "Ann", "text": "Darn, it broke"})
    assert (response.status_code, response.json()) == (
        400,
        {"error": 'must not contain the blocked word "darn"', "field": "text"},
    )
    assert not Message.objects.exists()
    assert published() == []


def test_deleted_message_leaves_the_history_and_the_room_page(
    api: Client, published: Drain
) -> None:
    kept = api.post("/rooms/lobby/messages/", {"from": "Ann", "text": "fine"}).json()
    gone = api.post("/rooms/lobby/messages/", {"from": "Bob", "text": "rude"}).json()
    message_delete(message_id=gone["id"])

    body = api.get("/rooms/lobby/messages/").json()
    assert body == {"messages": [kept], "last-event-id": "room-lobby:3"}

    browser = Client()
    browser.post("/chat/", {"nickname": "Cat", "room": "lobby"})
    config = browser.get("/chat/lobby/").context["config"]
    assert (config["messages"], config["lastEventId"]) == ([kept], "room-lobby:3")


def test_post_is_refused_with_503_while_the_rooms_backlog_is_full(
    api: Client, settings: Any, published: Drain
) -> None:
    """Writes that come faster than the publisher delivers them are refused, not queued
    without bound (REALTIME_MAX_BACKLOG); nothing of the refused one is stored."""
    settings.GRIP_PROXIES = [{"control_uri": "http://127.0.0.1:9/"}]
    settings.REALTIME_MAX_BACKLOG = 3
    for n in range(3):
        assert api.post("/rooms/full/messages/", {"from": "Ann", "text": str(n)}).status_code == 200
    response = api.post("/rooms/full/messages/", {"from": "Ann", "text": "one too many"})
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["field"] == "channel"
    assert [m.text for m in Message.objects.filter(room="full").order_by("id")] == ["0", "1", "2"]
    assert log.current_id("room-full") == 3
    published()  # the publisher catches up: room for more
    assert api.post("/rooms/full/messages/", {"from": "Ann", "text": "now"}).status_code == 200
    assert log.current_id("room-full") == 4


def test_post_is_never_refused_for_a_backlog_without_a_proxy(api: Client, settings: Any) -> None:
    settings.GRIP_PROXIES = []
    settings.REALTIME_MAX_BACKLOG = 1
    for n in range(3):
        assert (
            api.post("/rooms/direct/messages/", {"from": "Ann", "text": str(n)}).status_code == 200
        )

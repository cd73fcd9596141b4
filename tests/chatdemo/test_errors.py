"""Hostile and malformed requests: a 4xx JSON error that names the field, never a 5xx,
nothing stored, and the same status whether DEBUG is on or off (chatdemo.errors)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from chat.models import Message
from realtime.models import Event
from tests.conftest import Drain

pytestmark = pytest.mark.django_db

MULTIPART_WITH_A_FILE = (
    b'--XX\r\nContent-Disposition: form-data; name="text"; filename="a.txt"\r\n'
    b"Content-Type: text/plain\r\n\r\n" + b"a" * 3_000_000 + b"\r\n"
    b'--XX\r\nContent-Disposition: form-data; name="from"\r\n\r\nbob\r\n--XX--\r\n'
)
FORM = "application/x-www-form-urlencoded"

# (method, path, content type, body, status, field)
CASES: list[tuple[str, str, str | None, bytes, int, str]] = [
    ("POST", "/rooms/a/messages/", "application/json", b"[" * 2000, 400, "body"),
    ("POST", "/rooms/a/messages/", "application/json", b'{"a":' * 2000, 400, "body"),
    ("GET", "/rooms//messages/", None, b"", 404, "path"),
    ("GET", "/rooms/a/b/events/", None, b"", 404, "path"),
    ("GET", "/rooms/", None, b"", 404, "path"),
    ("GET", "/boards/", None, b"", 404, "path"),
    ("GET", "/boards/1/x/", None, b"", 404, "path"),
    ("GET", "/healthz/x", None, b"", 404, "path"),
    ("POST", "/rooms/a/messages/", "multipart/form-data", b"abc", 400, "body"),
    (
        "POST",
        "/rooms/a/messages/",
        "multipart/form-data; boundary=XX",
        MULTIPART_WITH_A_FILE,
        413,
        "body",
    ),
    (
        "POST",
        "/rooms/a/messages/",
        "application/websocket-events",
        b"TEXT 5\r\nhello\r\n",
        415,
        "Content-Type",
    ),
    ("POST", "/rooms/a/messages/", FORM, b"&".join(b"f%d=1" % i for i in range(1200)), 400, "body"),
    (
        "POST",
        "/rooms/a/messages/",
        f"{FORM}; charset=utf-16",
        "from=a&text=b".encode("utf-16"),
        415,
        "Content-Type",
    ),
    (
        "POST",
        "/rooms/a/messages/",
        f"{FORM}; charset=latin-1",
        b"from=\xe9&text=b",
        415,
        "Content-Type",
    ),
    ("GET", "/rooms/a/events/?lastEventId=a&lastEventId=b", None, b"", 400, "lastEventId"),
    ("POST", "/healthz", "application/json", b"{}", 405, "method"),
    ("PUT", "/boards/1/players/1/score-add/", None, b"", 405, "method"),
    ("POST", "/boards/1/players/1/score-add/", "text/plain", b"x" * 70_000, 413, "body"),
    ("POST", "/boards/abc/players/1/score-add/", None, b"", 404, "board"),
]


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize(
    ("method", "path", "content_type", "body", "status", "field"),
    CASES,
    ids=[f"{c[0]} {c[1][:28]} {(c[2] or '')[:40]} {c[4]}" for c in CASES],
)
def test_bad_request_is_a_json_4xx_naming_the_field_and_stores_nothing(
    settings: Any,
    published: Drain,
    debug: bool,
    method: str,
    path: str,
    content_type: str | None,
    body: bytes,
    status: int,
    field: str,
) -> None:
    settings.DEBUG = debug
    extra = {"content_type": content_type} if content_type else {}
    response = Client(raise_request_exception=False).generic(method, path, body, **extra)
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json()["field"] == field
    assert isinstance(response.json()["error"], str)
    assert not Message.objects.exists()
    assert not Event.objects.exists()
    assert published() == []


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize("charset", ["utf-16", "latin-1"])
def test_a_page_form_in_another_charset_is_415_in_both_modes(
    settings: Any, debug: bool, charset: str
) -> None:
    """Django refuses it when request.POST is read; its debug page read it again, without end."""
    settings.DEBUG = debug
    response = Client(raise_request_exception=False).generic(
        "POST",
        "/chat/",
        "nickname=a&room=b".encode(charset),
        content_type=f"{FORM}; charset={charset}",
    )
    assert response.status_code == 415


def test_a_form_declared_utf_8_is_accepted(published: Drain) -> None:
    for charset in ("UTF-8", "utf-8"):
        response = Client().generic(
            "POST",
            "/rooms/a/messages/",
            "from=Ann&text=hé".encode(),
            content_type=f"{FORM}; charset={charset}",
        )
        assert response.status_code == 200, response.content
    assert Message.objects.count() == 2

"""The SSE endpoints' answers to the proxy: every resume and recovery answer holds the
stream, depends only on Grip-Last or Last-Event-ID, and serves the URL's channel only."""

from __future__ import annotations

import re
import time
from typing import Any

import jwt
import pytest
from django.test import Client

from chat.services import message_post
from devstack.pushpin import PUSHPIN_CONF, read_config
from tests.conftest import Drain

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> Client:
    return Client(enforce_csrf_checks=True)


def proxied(**headers: str) -> dict[str, str]:
    """Headers of a request that came through Pushpin (its signed Grip-Sig), plus ``headers``."""
    conf = read_config(PUSHPIN_CONF)
    claims = {"iss": conf.get("proxy", "sig_iss"), "exp": int(time.time()) + 60}
    sig = jwt.encode(claims, conf.get("proxy", "sig_key"), algorithm="HS256")
    return {"HTTP_GRIP_SIG": sig, **{f"HTTP_{k.upper()}": v for k, v in headers.items()}}


def ids(response: Any) -> list[str]:
    return re.findall(r"^id: (.*)$", response.content.decode(), re.MULTILINE)


def next_link(response: Any) -> tuple[str, str]:
    """The Grip-Link URL and its parameters after the ``>``."""
    url, _, rest = response["Grip-Link"].partition(">")
    return url.lstrip("<"), rest


def test_recovery_pages_always_hold_and_come_back_soon_while_events_are_left(
    api: Client, published: Drain, settings: Any
) -> None:
    settings.REALTIME_PAGE_SIZE = 2
    settings.REALTIME_CATCH_UP_SECONDS = 0
    settings.EVENTSTREAM_NEXT_LINK_TIMEOUT = 600
    for n in range(5):
        message_post(room="lobby", author="Ann", text=str(n))
    pages = []
    response = api.get("/rooms/lobby/events/", **proxied(last_event_id="room-lobby:0"))
    while True:
        assert response.status_code == 200
        assert response["Grip-Hold"] == "stream"
        url, rest = next_link(response)
        assert "lastEventId" not in url
        assert "recover=true" in url
        pages.append((ids(response), response["Grip-Channel"], rest))
        if rest.endswith("timeout=600"):
            break
        last = ids(response)[-1].rpartition(":")[2]
        response = api.get(url, **proxied(grip_last=f"events-room-lobby; last-id={last}"))
    assert pages == [
        (
            ["room-lobby:1", "room-lobby:2"],
            "events-room-lobby; prev-id=2",
            "; rel=next; timeout=0",
        ),
        (
            ["room-lobby:3", "room-lobby:4"],
            "events-room-lobby; prev-id=4",
            "; rel=next; timeout=0",
        ),
        (
            ["room-lobby:5"],
            "events-room-lobby; prev-id=5",
            "; rel=next; timeout=600",
        ),
    ]


def test_recovery_link_serves_only_the_channel_of_its_url(api: Client, published: Drain) -> None:
    message_post(room="secret", author="Ann", text="for secret only")
    message_post(room="lobby", author="Bob", text="for lobby")
    first = api.get("/rooms/secret/events/", **proxied(last_event_id="room-secret:0"))
    url, _ = next_link(first)
    replayed = url.replace("/rooms/secret/", "/rooms/lobby/")
    response = api.get(replayed, **proxied(grip_last="events-room-secret; last-id=0"))
    assert response.status_code == 200
    assert "for secret only" not in response.content.decode()
    assert response["Grip-Channel"].startswith("events-room-lobby; ")


@pytest.mark.parametrize(
    "es_meta", ["garbage", jwt.encode({"channels": 5}, "k" * 32), jwt.encode({}, "x" * 32)]
)
def test_forged_es_meta_is_ignored(api: Client, published: Drain, es_meta: str) -> None:
    message_post(room="lobby", author="Ann", text="hi")
    response = api.get(
        f"/rooms/lobby/events/?link=next&recover=true&es-meta={es_meta}",
        **proxied(grip_last="events-room-lobby; last-id=0"),
    )
    assert response.status_code == 200
    assert ids(response) == ["room-lobby:1"]


@pytest.mark.parametrize(
    "grip_last", ["events-room-lobby; last-id=", "events-room-lobby; last-id=abc"]
)
def test_malformed_grip_last_is_a_json_400(api: Client, published: Drain, grip_last: str) -> None:
    response = api.get(
        "/rooms/lobby/events/?link=next&recover=true", **proxied(grip_last=grip_last)
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Grip-Last needs a numeric last-id", "field": "Grip-Last"}

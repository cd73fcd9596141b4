"""Project-wide checks."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver

from chatdemo.settings import GRIP_URL
from devstack.pushpin import PUSHPIN_CONF, read_config
from realtime import channels


@pytest.mark.django_db
def test_no_pending_migrations() -> None:
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def _callbacks(resolver: URLResolver) -> list:
    found = []
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            found.extend(_callbacks(pattern))
        elif isinstance(pattern, URLPattern):
            found.append(pattern.callback)
    return found


def test_sse_routes_never_let_clients_choose_channels() -> None:
    """Every SSE endpoint goes through realtime.stream.stream; none mounts django-eventstream's
    own view, which would let a client pick any channel with ?channel=."""
    from django_eventstream import views as eventstream_views

    callbacks = _callbacks(get_resolver())
    assert eventstream_views.events not in callbacks


def test_channel_names_come_from_realtime() -> None:
    assert channels.room_channel("lobby") == "room-lobby"
    assert channels.board_channel(3) == "board-3"


def test_default_grip_url_key_matches_pushpin_conf() -> None:
    conf = read_config(PUSHPIN_CONF)
    key = re.search(r"[?&]key=([^&]+)", GRIP_URL)
    assert key is not None
    assert key.group(1) == conf.get("proxy", "sig_key")
    assert re.search(r"[?&]iss=([^&]+)", GRIP_URL).group(1) == conf.get("proxy", "sig_iss")

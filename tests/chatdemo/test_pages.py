"""What every HTML page shares: the layout in templates/base.html."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from chatdemo.framing import frame_ancestors_policy
from leaderboard import services
from tests.conftest import Drain

pytestmark = pytest.mark.django_db

PAGES = ["/", "/chat/", "/chat/default/", "/leaderboard/"]


@pytest.mark.parametrize("path", PAGES)
def test_page_names_a_local_icon(client: Client, published: Drain, path: str) -> None:
    """Each page names its icon, so browsers do not ask for a missing /favicon.ico.

    The file is served like the other static files (tests/chatdemo/test_production.py
    fetches them from a collected STATIC_ROOT).
    """
    services.default_board_ensure()
    response = client.get(path, follow=True)
    assert response.status_code == 200
    icons = re.findall(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', response.text)
    assert icons == ["/static/favicon.svg"]
    found = finders.find("favicon.svg")
    assert found is not None
    with open(found, "rb") as icon:
        assert icon.read(5) == b"<svg "


def test_pages_may_not_be_framed_by_default(client: Client) -> None:
    response = client.get("/chat/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_pages_may_be_framed_by_the_configured_ancestors(client: Client, settings: Any) -> None:
    settings.FRAME_ANCESTORS = ["'self'", "https://devhub.example"]
    settings.FRAME_ANCESTORS_POLICY = frame_ancestors_policy(settings.FRAME_ANCESTORS)
    response = client.get("/chat/")
    assert "X-Frame-Options" not in response
    assert response["Content-Security-Policy"] == "frame-ancestors 'self' https://devhub.example"


@pytest.mark.parametrize(
    "sources",
    [["*"], ["https:"], ["'self'"], ["https://*.example.com:443", "http://localhost:8000/path"]],
)
def test_frame_ancestors_policy_accepts_csp_sources(sources: list[str]) -> None:
    assert frame_ancestors_policy(sources) == "frame-ancestors " + " ".join(sources)


@pytest.mark.parametrize(
    "source", ["https://a.example;", "'unsafe-inline'", "'none' x", "https://a.example,b", "a'b"]
)
def test_frame_ancestors_policy_refuses_other_values_naming_the_variable(source: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^DJANGO_FRAME_ANCESTORS: "):
        frame_ancestors_policy([source])

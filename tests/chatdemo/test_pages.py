"""What every HTML page shares: the layout in templates/base.html."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

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

"""Project-wide checks."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver

from chatdemo.settings import DEFAULT_GRIP_URL as GRIP_URL
from devstack import ROOT
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


# Who may import whom: the app never imports the tooling, tests or bench; the tooling
# imports neither tests nor bench; bench and tests share code through the tooling only.
APP_PACKAGES = ("base", "chatdemo", "chat", "leaderboard", "realtime", "idempotency", "ratelimit")
FORBIDDEN_IMPORTS = {
    **dict.fromkeys(APP_PACKAGES, frozenset({"devstack", "tests", "bench"})),
    "devstack": frozenset({"tests", "bench"}),
    "bench": frozenset({"tests"}),
    "tests": frozenset({"bench"}),
}


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_imports_never_run_from_the_app_to_tooling_or_between_tests_and_bench() -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for package, forbidden in FORBIDDEN_IMPORTS.items()
        for path in (ROOT / package).rglob("*.py")
        for name in _imported_packages(path) & forbidden
    }
    assert sorted(wrong) == []


# The app's layers, top to bottom: the site (settings, urls), the apps, the services they
# share, the base. A package imports only packages of lower layers; none imports a package
# of its own layer (chat and leaderboard never import each other).
LAYERS = {
    "chatdemo": 3,
    "chat": 2,
    "leaderboard": 2,
    "realtime": 1,
    "idempotency": 1,
    "ratelimit": 1,
    "base": 0,
}


def import_arrows() -> set[tuple[str, str, str]]:
    """Every (module path, its package, the app package it imports) across the layers."""
    return {
        (str(path.relative_to(ROOT)), package, name)
        for package in LAYERS
        for path in (ROOT / package).rglob("*.py")
        for name in _imported_packages(path) & set(LAYERS)
        if name != package
    }


def test_app_imports_run_down_the_layers() -> None:
    wrong = sorted(
        f"{path} ({package}, layer {LAYERS[package]}) imports {name} (layer {LAYERS[name]})"
        for path, package, name in import_arrows()
        if LAYERS[name] >= LAYERS[package]
    )
    assert wrong == []


# Each GRIP library has one door in the app: the one module that imports it.
DOORS = {
    "django_eventstream": "realtime/eventstream.py",
    "django_grip": "realtime/grip.py",
    "gripcontrol": "realtime/grip.py",
    "pubcontrol": "realtime/grip.py",
}


def test_each_grip_library_is_imported_through_its_door_only() -> None:
    imports = {
        (str(path.relative_to(ROOT)), name)
        for package in APP_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for name in _imported_packages(path) & set(DOORS)
    }
    assert sorted(f"{path} imports {name}" for path, name in imports if path != DOORS[name]) == []
    assert {name for _, name in imports} == {"django_eventstream", "gripcontrol"}

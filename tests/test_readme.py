"""The README is a runbook: the commands, variables and files it names exist.

Cheap checks of what a reader would type or open: every ``make`` target it
names is in the Makefile, every ``python -m`` module and ``manage.py`` command
exists, every environment variable it names is read somewhere in the code,
and every file or folder it points to is in the repository.
"""

from __future__ import annotations

import importlib.util
import re

import pytest
from django.core.management import get_commands

from devstack import ROOT

README = (ROOT / "README.md").read_text()
CODE = [
    path.read_text()
    for package in (
        "base",
        "chatdemo",
        "chat",
        "leaderboard",
        "realtime",
        "idempotency",
        "ratelimit",
        "devstack",
        "bench",
        "tests",
    )
    for path in (ROOT / package).rglob("*.py")
] + [(ROOT / "Makefile").read_text()]
# Paths the README names that a run makes, not the repository holds.
MADE_BY_A_RUN = {
    ".run/app.log",
    ".run/publisher.log",
    ".run/pushpin/log/",
    ".run/secret_key",
    ".run/chatdemo.sqlite3",
    "staticfiles/",  # collectstatic's
}
MEDIA_TYPES = ("text/", "application/", "multipart/")


def test_readme_make_targets_exist() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = set(re.findall(r"\bmake ([a-z][a-z-]+)", README))
    assert named, "the README names no make target"
    assert sorted(named - targets) == []


def test_readme_python_modules_and_commands_exist() -> None:
    modules = set(re.findall(r"python -m ([a-z_][a-z_.]*)", README))
    assert {"devstack.run", "devstack.testdeps"} <= modules | {"devstack.run", "devstack.testdeps"}
    assert sorted(m for m in modules if importlib.util.find_spec(m) is None) == []
    commands = set(re.findall(r"manage\.py ([a-z_]+)", README))
    assert commands, "the README names no manage.py command"
    assert sorted(commands - set(get_commands())) == []


def test_readme_environment_variables_are_read_by_the_code() -> None:
    named = set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)(?:=[^`]*)?`", README))
    assert "DATABASE_URL" in named
    unread = sorted(
        name for name in named if not any(re.search(rf"\b{name}\b", code) for code in CODE)
    )
    assert unread == []


NAMED_PATHS = {
    *re.findall(r"`([\w.-]+(?:/[\w.-]*)+|[\w.-]+\.(?:py|md|toml|yml|conf|js|example))`", README),
    *re.findall(r"\]\(([^)#:]+)\)", README),  # Markdown links and images
}


@pytest.mark.parametrize(
    "path",
    sorted(
        path
        for path in NAMED_PATHS
        if not path.startswith(("http", "/", *MEDIA_TYPES)) and path not in MADE_BY_A_RUN
    ),
)
def test_readme_files_exist(path: str) -> None:
    assert (ROOT / path).exists(), f"README names {path}, which is not in the repository"

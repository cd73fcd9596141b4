"""The chat's management commands: the word filter through ``chat_say``."""

from __future__ import annotations

import subprocess
import sys

from devstack import ROOT
from tests.conftest import environ_without_settings


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**environ_without_settings(), "DJANGO_DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_chat_blocked_words_from_the_environment_refuse_a_message() -> None:
    # A subprocess, so that chatdemo/settings.py reads the variable as at start-up.
    # The message is refused before anything touches the database.
    result = manage(
        "chat_say", "lobby", "Ann", "oh DARN it", env={"CHAT_BLOCKED_WORDS": "heck,darn"}
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == 'CommandError: text: must not contain the blocked word "darn"\n'

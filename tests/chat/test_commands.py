"""The chat's management commands: ``chat_delete`` (and the word filter through ``chat_say``)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from chat.models import Message
from chat.services import message_post
from devstack import ROOT
from realtime.models import Event
from tests.conftest import Drain, environ_without_settings

pytestmark = pytest.mark.django_db


def chat_delete(*ids: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("chat_delete", *ids, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_chat_delete_prints_each_event_and_publishes_it(published: Drain) -> None:
    ann = message_post(room="lobby", author="Ann", text="rude")
    bob = message_post(room="café", author="Bob", text="ruder")
    published()
    out, err = chat_delete(str(ann.pk), str(bob.pk))
    assert [json.loads(line) for line in out.splitlines()] == [
        {"id": ann.pk, "room": "lobby"},
        {"id": bob.pk, "room": "café"},
    ]
    assert err == ""
    assert not Message.objects.exists()
    assert [(type_, data) for _, type_, data in published()] == [
        ("message-delete", {"id": ann.pk, "room": "lobby"}),
        ("message-delete", {"id": bob.pk, "room": "café"}),
    ]


def test_chat_delete_unknown_id_fails_after_deleting_the_others(published: Drain) -> None:
    message = message_post(room="lobby", author="Ann", text="rude")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as error:
        call_command("chat_delete", "999999", str(message.pk), "x1", stdout=out, stderr=err)
    assert str(error.value) == "no such message: 999999, x1"
    assert out.getvalue() == json.dumps({"id": message.pk, "room": "lobby"}) + "\n"
    assert err.getvalue() == "message 999999: no such message\nmessage x1: no such message\n"
    assert not Message.objects.exists()


def test_chat_delete_twice_fails_and_stores_one_event(published: Drain) -> None:
    message = message_post(room="lobby", author="Ann", text="rude")
    chat_delete(str(message.pk))
    with pytest.raises(CommandError) as error:
        chat_delete(str(message.pk))
    assert str(error.value) == f"no such message: {message.pk}"
    assert Event.objects.filter(type="message-delete").count() == 1


def test_chat_delete_needs_an_id() -> None:
    with pytest.raises(CommandError) as error:
        call_command("chat_delete")
    assert "the following arguments are required: id" in str(error.value)


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

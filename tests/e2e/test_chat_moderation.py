"""Moderation in a real Chromium, through the real Pushpin: a deleted message leaves every
page, including one that was offline when it was deleted; a blocked word is refused and
the typed text kept."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, expect

from chat.models import Message
from tests.conftest import Stack, direct_app_with
from tests.e2e.conftest import Person, PersonFactory, save_screenshot

pytestmark = pytest.mark.e2e

# As for a new message: "each sees it within 2 s".
LIVE_MS = 2000


def chat_delete(*texts: str) -> None:
    """Delete the messages with these texts as a moderator does, with ``manage.py chat_delete``."""
    ids = [str(Message.objects.get(text=text).pk) for text in texts]
    call_command("chat_delete", *ids, stdout=io.StringIO())


def ann_and_bob_said(person: PersonFactory, room: str, *lines: tuple[str, str]) -> list[Person]:
    """Ann and Bob in ``room``, each page showing ``lines`` ((name, text), in order)."""
    people = {name: person(name) for name in ("Ann", "Bob")}
    for someone in people.values():
        someone.join_chat(room)
    for name, text in lines:
        people[name].say(text)
    for someone in people.values():
        expect(someone.messages).to_have_count(len(lines), timeout=LIVE_MS)
    return list(people.values())


def test_chat_deleted_message_disappears_from_every_page(
    person: PersonFactory, browser: Browser, room: str
) -> None:
    ann, bob = ann_and_bob_said(
        person, room, ("Ann", "hello"), ("Bob", "something rude"), ("Ann", "still here")
    )

    chat_delete("something rude")

    expected = [("Ann", "hello"), ("Ann", "still here")]
    for someone in (ann, bob):
        expect(someone.messages).to_have_count(2, timeout=LIVE_MS)
        assert someone.shown() == expected, someone.name
    assert ann.shown_ids() == bob.shown_ids()
    # A page opened now has it neither in its history nor from its stream.
    cat = person("Cat")
    cat.join_chat(room)
    assert cat.shown() == expected
    bob.say("sorry")
    for someone in (ann, bob, cat):
        expect(someone.messages).to_have_count(3, timeout=LIVE_MS)
        assert someone.shown() == [*expected, ("Bob", "sorry")], someone.name
    save_screenshot(browser, "chat-message-deleted", [ann, bob])


def test_chat_page_offline_during_a_delete_removes_the_message_when_back(
    person: PersonFactory, browser: Browser, room: str
) -> None:
    ann, bob = ann_and_bob_said(person, room, ("Ann", "before"), ("Ann", "something rude"))

    bob.context.set_offline(True)
    expect(bob.status).to_have_attribute("data-state", "lost")
    chat_delete("something rude")
    expect(ann.messages).to_have_count(1, timeout=LIVE_MS)
    assert bob.shown() == [("Ann", "before"), ("Ann", "something rude")], "offline, unchanged"

    bob.context.set_offline(False)
    expect(bob.status).to_have_attribute("data-state", "restored")
    expect(bob.messages).to_have_count(1)
    assert bob.shown() == ann.shown() == [("Ann", "before")]
    assert bob.status_log() == ["live", "lost", "restored"]
    # Live again from after the deletion.
    ann.say("after")
    expect(bob.messages).to_have_count(2, timeout=LIVE_MS)
    assert bob.shown() == [("Ann", "before"), ("Ann", "after")]
    save_screenshot(browser, "chat-deleted-while-offline", [ann, bob])


def test_chat_blocked_word_is_refused_and_the_text_kept(
    person: PersonFactory, live_db: Stack, tmp_path: Path, room: str
) -> None:
    # The stack's app has no blocked words; this one, without a proxy, has one.
    with direct_app_with(live_db, tmp_path, CHAT_BLOCKED_WORDS="darn") as app:
        ann = person("Ann", base_url=app.url)
        ann.join_chat(room)
        ann.message_input.fill("Oh DARN, it broke")
        ann.message_input.press("Enter")
        expect(ann.page.locator("#send-error")).to_have_text(
            'Not sent: text must not contain the blocked word "darn"'
        )
        expect(ann.message_input).to_have_value("Oh DARN, it broke")
        expect(ann.page.locator("#outbox li")).to_have_count(0)
        assert not Message.objects.filter(room=room).exists()

        ann.message_input.fill("Oh darnit, it broke")  # not the whole word
        ann.message_input.press("Enter")
        expect(ann.messages).to_have_count(1)
        assert ann.shown() == [("Ann", "Oh darnit, it broke")]
        expect(ann.page.locator("#send-error")).to_be_hidden()

"""The original chat demo's links and room names, in a real Chromium through Pushpin.

Its shared links (``/<room>?user=<nick>``, ``/?user=<nick>``) open the room as
that person, and rooms may be named as people name them (``café.talk``).
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import PersonFactory, save_screenshot

pytestmark = pytest.mark.e2e

LIVE_MS = 2000


def test_original_room_link_opens_the_room_as_that_nickname(
    person: PersonFactory, room: str
) -> None:
    ann, bob = person("Ann"), person("Bob")
    for someone in (ann, bob):
        someone.page.goto(f"/{room}?user={someone.name}")
        expect(someone.page).to_have_url(re.compile(rf"/chat/{re.escape(room)}/$"))
        expect(someone.page.locator(".whoami strong")).to_have_text(someone.name)
        expect(someone.status).to_have_attribute("data-state", "live")

    ann.say("came in through the old link")
    expect(bob.messages).to_have_count(1, timeout=LIVE_MS)
    assert bob.shown() == [("Ann", "came in through the old link")]


def test_original_home_link_opens_the_default_room(person: PersonFactory) -> None:
    cat = person("Cat")
    cat.page.goto("/?user=Cat")
    expect(cat.page).to_have_url(re.compile(r"/chat/default/$"))
    expect(cat.page.locator(".whoami strong")).to_have_text("Cat")
    expect(cat.status).to_have_attribute("data-state", "live")


def test_chat_room_named_cafe_talk(person: PersonFactory, browser: Browser) -> None:
    name = "café.talk"
    ann, bob = person("Ann"), person("Bob")
    ann.join_chat(name)  # typed into the join page
    bob.page.goto(f"/{name}?user=Bob")  # the original's link, as a person would paste it
    expect(bob.page).to_have_url(re.compile(rf"/chat/{re.escape(quote(name))}/$"))
    expect(bob.status).to_have_attribute("data-state", "live")
    for someone in (ann, bob):
        expect(someone.page.locator("#room-title")).to_have_text(f"#{name}")

    ann.say("bonjour")
    expect(bob.messages).to_have_count(1, timeout=LIVE_MS)
    # Offline and back: Bob's page resumes with the room's percent-encoded event id.
    bob.context.set_offline(True)
    expect(bob.status).to_have_attribute("data-state", "lost")
    ann.say("pendant ton absence")
    bob.context.set_offline(False)
    expect(bob.messages).to_have_count(2, timeout=10_000)
    bob.say("me revoilà")
    expect(ann.messages).to_have_count(3, timeout=LIVE_MS)

    expected = [("Ann", "bonjour"), ("Ann", "pendant ton absence"), ("Bob", "me revoilà")]
    assert ann.shown() == bob.shown() == expected
    assert ann.shown_ids() == bob.shown_ids()
    save_screenshot(browser, "chat-cafe-talk", [ann, bob])

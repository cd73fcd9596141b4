"""Chat stories in a real Chromium, through the real Pushpin.

"Open the chat page in several browsers": each person is a separate browser
context with their own cookie, joining through the join page.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, expect

from tests.chat.test_integration import post
from tests.conftest import Stack
from tests.e2e.conftest import (
    Person,
    PersonFactory,
    controls_without_names,
    save_screenshot,
    sideways_overflow,
)

pytestmark = pytest.mark.e2e

# The bar for live delivery: "each sees the other's message within 2 s".
LIVE_MS = 2000


# --- story 1: people in a room ---------------------------------------------------------


def test_chat_two_people_see_each_others_messages_within_2s(
    person: PersonFactory, browser: Browser, room: str
) -> None:
    ann, bob = person("Ann", width=520), person("Bob", width=520)
    ann.join_chat(room)
    bob.join_chat(room)

    ann.say("Hi Bob, are you there?")
    expect(bob.messages).to_have_count(1, timeout=LIVE_MS)
    bob.say("Loud and clear, Ann.")
    expect(ann.messages).to_have_count(2, timeout=LIVE_MS)

    expected = [("Ann", "Hi Bob, are you there?"), ("Bob", "Loud and clear, Ann.")]
    assert ann.shown() == expected
    assert bob.shown() == expected
    assert ann.shown_ids() == bob.shown_ids()
    # Each page marks its own person's messages.
    expect(ann.messages.nth(0)).to_have_class("message mine")
    expect(bob.messages.nth(1)).to_have_class("message mine")
    save_screenshot(browser, "chat-two-people", [ann, bob], readme="chat")


def test_chat_late_joiner_sees_history(person: PersonFactory, browser: Browser, room: str) -> None:
    ann, bob = person("Ann"), person("Bob")
    ann.join_chat(room)
    bob.join_chat(room)
    ann.say("first")
    bob.say("second")
    expect(ann.messages).to_have_count(2, timeout=LIVE_MS)

    cat = person("Cat")
    cat.join_chat(room)
    assert cat.shown() == [("Ann", "first"), ("Bob", "second")]
    # The history is live too: Cat is subscribed from where it ends.
    ann.say("welcome, Cat")
    expect(cat.messages).to_have_count(3, timeout=LIVE_MS)
    assert cat.shown_ids() == ann.shown_ids()
    save_screenshot(browser, "chat-late-joiner", [ann, cat])


def test_chat_other_room_sees_none_of_it(
    person: PersonFactory, browser: Browser, room: str
) -> None:
    ann, bob, dan = person("Ann"), person("Bob"), person("Dan")
    ann.join_chat(room)
    bob.join_chat(room)
    dan.join_chat(f"{room}-elsewhere")

    ann.say("only for this room")
    expect(bob.messages).to_have_count(1, timeout=LIVE_MS)
    dan.say("anyone here?")
    bob.say("still only for this room")
    expect(ann.messages).to_have_count(2, timeout=LIVE_MS)

    assert dan.shown() == [("Dan", "anyone here?")]
    assert (
        ann.shown()
        == bob.shown()
        == [
            ("Ann", "only for this room"),
            ("Bob", "still only for this room"),
        ]
    )
    # Neither the stream nor the history leaks: a reload renders the same.
    dan.page.reload()
    expect(dan.status).to_have_attribute("data-state", "live")
    assert dan.shown() == [("Dan", "anyone here?")]
    save_screenshot(browser, "chat-other-room", [ann, dan])


# --- story 2: reconnecting --------------------------------------------------------------


def talking_pair(person: PersonFactory, room: str, first: str) -> tuple[Person, Person]:
    """Ann and Bob in ``room``, Bob live: he has seen Ann's ``first`` message."""
    ann, bob = person("Ann"), person("Bob")
    ann.join_chat(room)
    bob.join_chat(room)
    ann.say(first)
    expect(bob.messages).to_have_count(1, timeout=LIVE_MS)
    return ann, bob


def test_chat_offline_person_gets_missed_messages_once_in_order(
    person: PersonFactory, browser: Browser, room: str
) -> None:
    ann, bob = talking_pair(person, room, "before the outage")

    bob.context.set_offline(True)
    expect(bob.status).to_have_attribute("data-state", "lost")
    expect(bob.status).to_contain_text("Connection lost")
    missed = [f"missed {n}" for n in range(1, 6)]
    for text in missed:
        ann.say(text)
    assert bob.shown() == [("Ann", "before the outage")], "offline, Bob's page got nothing"

    bob.context.set_offline(False)
    expect(bob.messages).to_have_count(6)
    expect(bob.status).to_have_attribute("data-state", "restored")
    expect(bob.status).to_contain_text("Connection restored")
    assert bob.shown() == [("Ann", "before the outage"), *(("Ann", t) for t in missed)]
    assert bob.shown_ids() == ann.shown_ids()
    assert bob.status_log() == ["live", "lost", "restored"]
    # Back to normal: live delivery resumes.
    ann.say("after the outage")
    expect(bob.messages).to_have_count(7, timeout=LIVE_MS)
    assert bob.shown_ids() == ann.shown_ids()
    save_screenshot(browser, "chat-offline-and-back", [ann, bob])


def test_chat_pushpin_restart_pages_resume_without_loss(
    person: PersonFactory, browser: Browser, room: str, stack: Stack
) -> None:
    ann, bob = talking_pair(person, room, "before the restart")

    stack.pushpin.stop()
    try:
        for someone in (ann, bob):
            expect(someone.status).to_have_attribute("data-state", "lost")
        # Posted while no proxy holds any stream: no page can get it live, only by resuming.
        with httpx.Client(base_url=stack.app.url, timeout=10) as direct:
            during = post(direct, room, "Cat", "while the proxy was down")
    finally:
        stack.pushpin.restart()  # the stack is shared: later tests need their Pushpin back
    ann.say("right after the restart")
    ann.say("and one more")

    expected = [
        ("Ann", "before the restart"),
        ("Cat", "while the proxy was down"),
        ("Ann", "right after the restart"),
        ("Ann", "and one more"),
    ]
    for someone in (ann, bob):
        expect(someone.messages).to_have_count(len(expected))
        expect(someone.status).to_have_attribute("data-state", "restored")
        assert someone.shown() == expected
        assert someone.status_log() == ["live", "lost", "restored"]
    assert bob.shown_ids() == ann.shown_ids()
    assert during["id"] in bob.shown_ids()
    save_screenshot(browser, "chat-pushpin-restart", [ann, bob])


# --- story 3: safety --------------------------------------------------------------------

HOSTILE = [
    '<img src=x onerror="window.__pwned = (window.__pwned || 0) + 1; alert(1)">',
    "<script>window.__pwned = 1; alert(2)</script>",
    '"><svg onload="window.__pwned = 1; alert(3)">',
]


def test_chat_html_in_messages_shows_as_text_and_runs_nothing(
    person: PersonFactory, browser: Browser, room: str
) -> None:
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    eve, bob = person("<i>Eve</i>"), person("Bob")
    for someone in (eve, bob):
        someone.page.on("dialog", record)
        someone.join_chat(room)
    for text in HOSTILE:
        eve.say(text)
    expect(bob.messages).to_have_count(len(HOSTILE), timeout=LIVE_MS)
    # A late joiner gets the same messages from the server-rendered history.
    cat = person("Cat")
    cat.page.on("dialog", record)
    cat.join_chat(room)

    expected = [("<i>Eve</i>", text) for text in HOSTILE]
    for someone in (eve, bob, cat):
        # Sender (its POST's answer), live (the stream), history (the template).
        assert someone.shown() == expected, someone.name
        assert someone.page.locator("#messages img, #messages script, #messages svg").count() == 0
        assert someone.page.locator("#messages i").count() == 0
        assert someone.page.evaluate("window.__pwned") is None
    expect(eve.page.locator(".whoami")).to_contain_text("You are <i>Eve</i>")
    assert dialogs == []
    save_screenshot(browser, "chat-html-as-text", [eve, cat])


# --- story 6: usability -----------------------------------------------------------------


def test_chat_enter_sends_and_keeps_focus_in_the_input(person: PersonFactory, room: str) -> None:
    ann = person("Ann")
    ann.join_chat(room)
    expect(ann.message_input).to_be_focused()  # ready to type on arrival

    ann.message_input.press_sequentially("typed, then Enter")
    ann.message_input.press("Enter")
    expect(ann.messages).to_have_count(1)
    expect(ann.message_input).to_have_value("")
    expect(ann.message_input).to_be_focused()

    # Straight on to the next message, without touching the mouse.
    ann.page.keyboard.type("and again")
    ann.page.keyboard.press("Enter")
    expect(ann.messages).to_have_count(2)
    expect(ann.message_input).to_be_focused()
    assert ann.shown() == [("Ann", "typed, then Enter"), ("Ann", "and again")]


def test_chat_pages_fit_375px_without_sideways_scroll(
    person: PersonFactory, browser: Browser, room: str
) -> None:
    # The longest names the validation allows, and text with nowhere to wrap.
    long_room = (room + "-" + "r" * 64)[:64]
    ann = person("A" * 32, width=375, height=700)
    ann.page.goto("/chat/")
    assert not (found := sideways_overflow(ann.page)), found

    ann.join_chat(long_room)
    ann.say("x" * 300)
    ann.say("https://example.com/" + "a/" * 120)
    ann.say("short one")
    assert not (found := sideways_overflow(ann.page)), found
    save_screenshot(browser, "chat-375px", [ann])


def test_chat_controls_have_accessible_names(person: PersonFactory, room: str) -> None:
    ann = person("Ann")
    ann.page.goto("/chat/")
    expect(ann.page.get_by_role("textbox", name="Nickname")).to_be_visible()
    expect(ann.page.get_by_role("textbox", name="Room")).to_be_visible()
    expect(ann.page.get_by_role("button", name="Join")).to_be_visible()
    assert controls_without_names(ann.page) == []

    ann.join_chat(room)
    page = ann.page
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.get_by_role("list", name="Messages")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Live")
    assert controls_without_names(page) == []

"""Over the rate limit, in a real Chromium through Pushpin: the page says how long to wait,
and what was typed is kept. The app runs with 3 posts and 3 clicks at once, then one every
20 s (``LIMITS_ON``), so the fourth is refused while the test runs."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from leaderboard.services import board_create
from tests.conftest import Stack
from tests.e2e.conftest import PersonFactory, save_screenshot

pytestmark = pytest.mark.e2e

SEND_FIVE_AT_ONCE = """
() => {
  const input = document.getElementById("text");
  const form = document.getElementById("send");
  for (let n = 1; n <= 5; n += 1) {
    input.value = `quick ${n}`;
    form.requestSubmit();
  }
}
"""
TOO_MANY_MESSAGES = re.compile(r"^Too many messages, try again in (1?[0-9]|20) s\.$")


def test_a_flood_of_messages_is_refused_and_the_text_is_kept(
    person: PersonFactory, limited_stack: Stack, room: str, browser: Browser
) -> None:
    ann = person("Ann", stack=limited_stack)
    ann.join_chat(room)
    for n in range(1, 4):
        ann.say(f"message {n}")

    ann.message_input.fill("message 4, kept")
    ann.message_input.press("Enter")
    expect(ann.page.locator("#send-error")).to_have_text(TOO_MANY_MESSAGES)
    expect(ann.message_input).to_have_value("message 4, kept")
    expect(ann.page.locator("#outbox li")).to_have_count(0)
    assert ann.shown() == [("Ann", f"message {n}") for n in range(1, 4)]
    save_screenshot(browser, "chat-rate-limited", [ann])


def test_messages_queued_behind_a_refused_one_stay_unsent(
    person: PersonFactory, limited_stack: Stack, room: str
) -> None:
    ann = person("Ann", stack=limited_stack)
    ann.join_chat(room)
    # Five sent in one go (in one task, so all are queued before any answer comes back):
    # three are stored, the fourth comes back into the input, the fifth waits in the
    # outbox as "Not sent" with its button.
    ann.page.evaluate(SEND_FIVE_AT_ONCE)
    expect(ann.page.locator("#send-error")).to_have_text(TOO_MANY_MESSAGES)
    expect(ann.messages).to_have_count(3)
    assert ann.shown() == [("Ann", f"quick {n}") for n in range(1, 4)]
    expect(ann.message_input).to_have_value("quick 4")
    unsent = ann.page.locator("#outbox li.failed")
    expect(unsent.locator(".text")).to_have_text(["quick 5"])
    expect(unsent.get_by_role("button", name="Send again")).to_be_visible()


def test_a_flood_of_clicks_gets_a_short_notice(person: PersonFactory, limited_stack: Stack) -> None:
    board = board_create(name="Limited", players=["Ann", "Bob"])
    cat = person("Cat", stack=limited_stack)
    cat.open_board(board.pk)
    for score in range(1, 4):
        cat.plus("Bob").click()
        expect(cat.score("Bob")).to_have_attribute("data-score", str(score))
    cat.plus("Bob").click()
    expect(cat.page.locator("#click-error")).to_have_text(
        re.compile(r"^Too many clicks, try again in (1?[0-9]|20) s\.$")
    )
    assert cat.standings() == [(1, "Bob", 3), (2, "Ann", 0)]

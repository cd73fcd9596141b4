"""Typing indicators in a real Chromium, through the real Pushpin.

"Ann is typing…" shows on the others' pages while Ann types, never on her own,
and goes away when her message arrives or 5 s after her last typing event.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Route, expect

from tests.chat.test_integration import post
from tests.conftest import Stack
from tests.e2e.conftest import Person, PersonFactory

pytestmark = pytest.mark.e2e

LIVE_MS = 2000
SHOWN_MS = 5000  # chat.services.TYPING_SHOWN_SECONDS

# Each change of the page's typing line or message count, one entry per DOM update (a
# MutationObserver batch), with when it happened: performance.now(), in ms.
WATCH_SCRIPT = """() => {
  const line = document.getElementById("typing");
  const list = document.getElementById("messages");
  const count = () => list.querySelectorAll("li.message").length;
  window.__typing = [];
  new MutationObserver(() => {
    const last = window.__typing[window.__typing.length - 1];
    const now = { typing: line.textContent, messages: count(), t: performance.now() };
    if (!last || last.typing !== now.typing || last.messages !== now.messages) {
      window.__typing.push(now);
    }
  }).observe(line.parentNode, { childList: true, characterData: true, subtree: true });
}"""


def watch(someone: Person) -> None:
    someone.page.evaluate(WATCH_SCRIPT)


def changes(someone: Person) -> list[dict[str, Any]]:
    return list(someone.page.evaluate("window.__typing"))


def line(someone: Person) -> Any:
    return someone.page.locator("#typing")


def test_chat_typing_shows_to_the_others_only_and_goes_when_the_message_arrives(
    person: PersonFactory, room: str
) -> None:
    ann, bob = person("Ann"), person("Bob")
    ann.join_chat(room)
    bob.join_chat(room)
    watch(ann)
    watch(bob)
    expect(line(ann)).to_have_attribute("aria-live", "polite")

    bob.message_input.press_sequentially("on my way")
    expect(line(ann)).to_have_text("Bob is typing…", timeout=LIVE_MS)
    bob.message_input.press("Enter")
    expect(ann.messages).to_have_count(1, timeout=LIVE_MS)
    expect(line(ann)).to_have_text("")
    # The message took the line away as it arrived, in the same update of the page.
    assert [(c["typing"], c["messages"]) for c in changes(ann)] == [
        ("Bob is typing…", 0),
        ("", 1),
    ]

    # Ann types after Bob's own typing event reached his page: his page shows hers only.
    ann.message_input.press_sequentially("great")
    expect(line(bob)).to_have_text("Ann is typing…", timeout=LIVE_MS)
    assert [c["typing"] for c in changes(bob) if c["typing"]] == ["Ann is typing…"]
    assert [c["typing"] for c in changes(ann) if c["typing"]] == ["Bob is typing…"]


def test_chat_typing_goes_5s_after_the_last_typing_event(person: PersonFactory, room: str) -> None:
    ann, bob = person("Ann"), person("Bob")
    ann.join_chat(room)
    bob.join_chat(room)
    watch(ann)

    bob.message_input.press_sequentially("hm")  # one typing event: well within 2 s
    last_keystroke = time.monotonic()
    expect(line(ann)).to_have_text("Bob is typing…", timeout=LIVE_MS)
    # Still shown after the last keystroke, then gone within 5 s of it and a margin.
    expect(line(ann)).to_have_text("", timeout=SHOWN_MS + 1500)
    assert time.monotonic() - last_keystroke < SHOWN_MS / 1000 + 1.5
    shown, gone = changes(ann)
    assert (shown["typing"], gone["typing"]) == ("Bob is typing…", "")
    assert SHOWN_MS - 50 <= gone["t"] - shown["t"] <= SHOWN_MS + 500


def test_chat_typing_names_two_people_then_says_several(
    person: PersonFactory, live_db: Stack, room: str
) -> None:
    ann = person("Ann")
    ann.join_chat(room)
    with httpx.Client(base_url=live_db.url, timeout=10) as client:
        for name, shown in (
            ("Bob", "Bob is typing…"),
            ("Cleo", "Bob and Cleo are typing…"),
            ("Dan", "Several people are typing…"),
        ):
            response = client.post(f"/rooms/{room}/typing/", data={"from": name})
            assert response.status_code == 204
            expect(line(ann)).to_have_text(shown, timeout=LIVE_MS)
        post(client, room, "Cleo", "here")
    expect(line(ann)).to_have_text("Bob and Dan are typing…", timeout=LIVE_MS)


def test_chat_typing_refused_is_ignored_and_the_message_still_goes(
    person: PersonFactory, room: str
) -> None:
    ann = person("Ann")
    ann.join_chat(room)
    refused: list[str] = []

    def refuse(route: Route) -> None:
        refused.append(route.request.post_data or "")
        route.fulfill(
            status=429,
            headers={"Retry-After": "2", "Content-Type": "application/json"},
            body='{"error": "too many typing events; try again in 2 s", "field": "rate"}',
        )

    ann.page.route("**/typing/", refuse)
    ann.message_input.press_sequentially("still here")
    ann.message_input.press("Enter")
    expect(ann.messages).to_have_count(1, timeout=LIVE_MS)
    assert refused == ["from=Ann"]
    expect(ann.page.locator("#send-error")).to_be_hidden()

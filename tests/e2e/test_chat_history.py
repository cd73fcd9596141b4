"""Older history and the unread count, in a real Chromium through the real Pushpin.

A room's page starts with its 50 newest messages; scrolled to the top, it loads
the 50 before them, and so on back to the room's first message, without moving
what the person was looking at. While its tab is hidden, its title counts the
messages that arrive live.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Locator, expect

from chat.models import Message
from chat.services import message_post
from tests.chat.test_integration import post
from tests.conftest import Stack
from tests.e2e.conftest import Person, PersonFactory

pytestmark = pytest.mark.e2e

LIVE_MS = 2000
# Added to each of the page's requests, so that a live message can arrive while
# a page of older ones is on its way.
LATENCY_MS = 200

# Every URL the page fetches, in the order it asks, recorded as it asks: a test
# can tell at once that the page asked for nothing more.
RECORD_FETCHES = """
window.__fetched = [];
const fetchAndRecord = window.fetch;
window.fetch = function (input, init) {
  window.__fetched.push(String(input));
  return fetchAndRecord.call(this, input, init);
};
"""

# Scroll the list to its top, as a person does who reads back; say which
# message is first in it and where it is on the screen at that moment.
SCROLL_TO_TOP = """
() => {
  const list = document.getElementById("messages");
  list.scrollTop = 0;
  const first = list.querySelector("li.message");
  return [Number(first.dataset.id), first.getBoundingClientRect().top];
}
"""

# Scroll the list (to "top" or "bottom") and resolve once the page's own scroll
# handler has run (this one was added after it).
SCROLL_AND_SETTLE = """
to => new Promise((resolve, reject) => {
  const list = document.getElementById("messages");
  const target = to === "top" ? 0 : list.scrollHeight - list.clientHeight;
  if (Math.abs(list.scrollTop - target) < 1) reject(new Error(`already at the ${to}: no scroll`));
  list.addEventListener("scroll", () => resolve(), { once: true });
  list.scrollTop = target;
})
"""

# A page of older messages came in (the first message is another), or the page
# learnt that there are none.
OLDER_PAGE_DONE = """
id => {
  const first = document.querySelector("#messages li.message");
  const state = document.getElementById("history-edge").dataset.state;
  return Number(first.dataset.id) !== id || state === "start";
}
"""

TOP_OF = "id => document.querySelector(`#messages li[data-id='${id}']`).getBoundingClientRect().top"

# The tab's visibility, under the test's control: headless Chromium's tabs are
# always visible. room.js reads document.visibilityState and listens for
# visibilitychange, as it does for a real tab.
CONTROLLED_VISIBILITY = """
() => {
  let state = "visible";
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
  Object.defineProperty(document, "hidden", { configurable: true, get: () => state === "hidden" });
  window.__setVisibility = (next) => {
    state = next;
    document.dispatchEvent(new Event("visibilitychange"));
  };
}
"""


def history_edge(someone: Person) -> Locator:
    return someone.page.locator("#history-edge")


def posted_by_cat(room: str, count: int) -> list[Message]:
    """``count`` messages in ``room``, stored through the service, oldest first."""
    return [message_post(room=room, author="Cat", text=f"message {n}") for n in range(1, count + 1)]


def test_chat_scrolling_back_shows_300_messages_once_in_order_without_jumping(
    person: PersonFactory, room: str, live_db: Stack
) -> None:
    posted = posted_by_cat(room, 300)
    ann = person("Ann")
    ann.page.add_init_script(RECORD_FETCHES)
    ann.join_chat(room)
    ann.slow_link(LATENCY_MS)
    assert ann.shown_ids() == [m.pk for m in posted[250:]]
    expect(history_edge(ann)).to_have_attribute("data-state", "more")

    live: list[int] = []
    jumps = []
    with httpx.Client(base_url=live_db.url, timeout=10) as bob:
        for page in range(1, 7):
            first, top_before = ann.page.evaluate(SCROLL_TO_TOP)
            if page == 2:
                # Sent while Ann's page asks for older ones: it arrives meanwhile, at the bottom.
                live.append(post(bob, room, "Bob", "live while Ann reads back")["id"])
            ann.page.wait_for_function(OLDER_PAGE_DONE, arg=first)
            # The message that was first is where it was on the screen, with the older ones above it.
            jumps.append(round(ann.page.evaluate(TOP_OF, first) - top_before, 1))
            older = posted[max(0, 250 - 50 * page) :]
            expect(ann.messages).to_have_count(len(older) + len(live), timeout=LIVE_MS)
            assert ann.shown_ids() == [m.pk for m in older] + live, f"after page {page}"
            if page == 3:
                # Our own message: its POST's answer races its stream event; shown once.
                ann.say("mine, while reading back")
                live.append(Message.objects.get(room=room, author="Ann").pk)
    # Less than a pixel: the list scrolls by whole pixels, the messages sit on fractions.
    assert [abs(jump) < 1 for jump in jumps] == [True] * 6, jumps

    expect(history_edge(ann)).to_have_attribute("data-state", "start")
    expect(history_edge(ann)).to_have_text("This is the start of the room")
    expect(history_edge(ann)).to_be_in_viewport()
    assert ann.shown() == [
        *(("Cat", f"message {n}") for n in range(1, 301)),
        ("Bob", "live while Ann reads back"),
        ("Ann", "mine, while reading back"),
    ]
    assert ann.shown_ids() == [m.pk for m in posted] + live
    # Back at the top, the page asks for nothing more.
    ann.page.evaluate(SCROLL_AND_SETTLE, "bottom")
    ann.page.evaluate(SCROLL_AND_SETTLE, "top")
    asked = [url for url in ann.page.evaluate("window.__fetched") if "before=" in url]
    bounds = [posted[250].pk, posted[200].pk, posted[150].pk, posted[100].pk, posted[50].pk]
    assert asked == [f"/rooms/{room}/messages/?before={bound}" for bound in [*bounds, posted[0].pk]]


def test_chat_short_room_shows_its_start_and_asks_for_nothing_older(
    person: PersonFactory, room: str
) -> None:
    posted = posted_by_cat(room, 3)
    ann = person("Ann")
    ann.page.add_init_script(RECORD_FETCHES)
    ann.join_chat(room)
    assert ann.shown_ids() == [m.pk for m in posted]
    expect(history_edge(ann)).to_have_text("This is the start of the room")
    # The list is too short to scroll: the page knew from the start.
    assert ann.page.evaluate("document.getElementById('messages').scrollTop") == 0
    assert [url for url in ann.page.evaluate("window.__fetched") if "before=" in url] == []


def test_chat_hidden_tab_title_counts_live_messages_until_shown(
    person: PersonFactory, room: str, live_db: Stack
) -> None:
    posted_by_cat(room, 55)  # so that Ann's page has 5 older ones to load
    title = f"#{room} · Chat"
    ann, bob = person("Ann"), person("Bob")
    ann.join_chat(room)
    bob.join_chat(room)
    ann.page.evaluate(CONTROLLED_VISIBILITY)
    bob.say("seen: Ann's tab is visible")
    expect(ann.messages).to_have_count(51, timeout=LIVE_MS)
    assert ann.page.title() == title

    ann.page.evaluate("window.__setVisibility('hidden')")
    bob.say("one")
    # History loaded while hidden is not news: it is not counted.
    ann.page.evaluate(SCROLL_AND_SETTLE, "top")
    expect(history_edge(ann)).to_have_attribute("data-state", "start")
    bob.say("two")
    with httpx.Client(base_url=live_db.url, timeout=10) as elsewhere:
        # Ann herself, from another device: hers, so not unread.
        post(elsewhere, room, "Ann", "from my phone")
    expect(ann.messages).to_have_count(59, timeout=LIVE_MS)
    assert ann.page.title() == f"(2) {title}"

    ann.page.evaluate("window.__setVisibility('visible')")
    assert ann.page.title() == title
    bob.say("three, seen at once")
    expect(ann.messages).to_have_count(60, timeout=LIVE_MS)
    assert ann.page.title() == title

    # Hidden again, the count starts over.
    ann.page.evaluate("window.__setVisibility('hidden')")
    bob.say("four")
    expect(ann.messages).to_have_count(61, timeout=LIVE_MS)
    assert ann.page.title() == f"(1) {title}"
    assert [text for _, text in ann.shown()[-6:]] == [
        "seen: Ann's tab is visible",
        "one",
        "two",
        "from my phone",
        "three, seen at once",
        "four",
    ]

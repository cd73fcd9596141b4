"""Sending in a real Chromium: nothing typed is lost, however fast or slow the link.

People press Enter as fast as they type, on links far slower than the test
machine's: the send form must never drop what was typed, and must deliver
messages in the order they were sent.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Route, expect

from chat.models import Message
from tests.e2e.conftest import PersonFactory, losing_first_answer

pytestmark = pytest.mark.e2e

# The slow link: 300 ms added to every request.
LATENCY_MS = 300
# Ten POSTs one after another at 300 ms each, then delivery: well under 10 s.
DELIVERY_MS = 10_000
# A bidi override: a person can paste it; the server refuses it.
REFUSED = "look \u202eevil"


def stored(room: str) -> list[str]:
    return list(Message.objects.filter(room=room).order_by("id").values_list("text", flat=True))


def test_chat_ten_quick_messages_over_a_slow_link_shown_once_in_order(
    person: PersonFactory, room: str
) -> None:
    ann, bob = person("Ann"), person("Bob")
    ann.join_chat(room)
    bob.join_chat(room)
    ann.slow_link(LATENCY_MS)

    texts = [f"quick message {n}" for n in range(1, 11)]
    for text in texts:
        # Typed key by key and sent with Enter, without waiting for anything.
        ann.message_input.press_sequentially(text)
        ann.message_input.press("Enter")

    expected = [("Ann", text) for text in texts]
    for someone in (ann, bob):
        expect(someone.messages).to_have_count(10, timeout=DELIVERY_MS)
        assert someone.shown() == expected, someone.name
    expect(ann.page.locator("#outbox li")).to_have_count(0)
    expect(ann.message_input).to_have_value("")
    assert stored(room) == texts
    assert ann.shown_ids() == bob.shown_ids()


def test_chat_input_is_cleared_when_sent_not_when_answered(
    person: PersonFactory, room: str
) -> None:
    ann = person("Ann")
    ann.join_chat(room)
    ann.slow_link(LATENCY_MS)

    ann.message_input.fill("first")
    ann.message_input.press("Enter")
    # Cleared at once, and the message waits in the outbox until stored.
    expect(ann.message_input).to_have_value("", timeout=LATENCY_MS // 2)
    expect(ann.page.locator("#outbox li .text")).to_have_text(["first"])
    ann.message_input.press_sequentially("ok")
    expect(ann.messages).to_have_count(1)
    expect(ann.page.locator("#outbox li")).to_have_count(0)
    # The answer to "first" came while "ok" was in the input: it is still there.
    expect(ann.message_input).to_have_value("ok")
    assert stored(room) == ["first"]


def test_chat_refused_message_goes_back_into_the_input_with_the_reason(
    person: PersonFactory, room: str
) -> None:
    ann = person("Ann")
    ann.join_chat(room)

    ann.message_input.fill(REFUSED)
    ann.message_input.press("Enter")

    expect(ann.message_input).to_have_value(REFUSED)
    expect(ann.page.locator("#send-error")).to_have_text(
        "Not sent: text must not contain control characters other than newline and tab"
    )
    expect(ann.page.locator("#outbox li")).to_have_count(0)
    assert stored(room) == []


def test_chat_refused_message_stays_in_the_outbox_when_something_new_was_typed(
    person: PersonFactory, room: str
) -> None:
    ann = person("Ann")
    ann.join_chat(room)
    held: list[Route] = []

    def hold_posts(route: Route) -> None:
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    ann.page.route("**/messages/", hold_posts)
    ann.message_input.fill(REFUSED)
    ann.message_input.press("Enter")
    ann.message_input.press_sequentially("something new")
    deadline = time.monotonic() + 5
    while not held:  # the route handler runs while Playwright waits on the page
        assert time.monotonic() < deadline, "the POST never left the page"
        ann.page.wait_for_timeout(20)
    held[0].continue_()  # to the real server, which refuses it

    failed = ann.page.locator("#outbox li.failed")
    expect(failed.locator(".text")).to_have_text(REFUSED)
    expect(failed.get_by_role("button", name="Send again")).to_be_visible()
    expect(ann.page.locator("#send-error")).to_contain_text("Not sent: text must not")
    expect(ann.message_input).to_have_value("something new")
    ann.page.unroute("**/messages/")
    ann.message_input.press("Enter")
    expect(ann.messages.locator(".text")).to_have_text(["something new"])
    assert stored(room) == ["something new"]


def test_chat_message_whose_answer_was_lost_is_sent_again_and_stored_once(
    person: PersonFactory, room: str
) -> None:
    """The first send is stored, then its answer is lost: the page sends it again with the
    same Idempotency-Key, and the server answers with the message it already has."""
    ann, bob = person("Ann"), person("Bob")
    ann.join_chat(room)
    bob.join_chat(room)
    keys: list[str | None] = []

    ann.page.route("**/messages/", losing_first_answer(keys))
    ann.message_input.fill("said once")
    ann.message_input.press("Enter")

    for someone in (ann, bob):
        expect(someone.messages.locator(".text")).to_have_text(["said once"])
    expect(ann.page.locator("#outbox li")).to_have_count(0)
    expect(ann.page.locator("#send-error")).to_be_hidden()
    assert stored(room) == ["said once"]
    assert len(keys) == 2
    assert keys[0] and keys[0] == keys[1]

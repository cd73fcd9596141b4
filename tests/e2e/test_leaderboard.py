"""Leaderboard stories in a real Chromium, through the real Pushpin.

"Click +1 on the leaderboard": each person is a separate browser context on the
same board page; clicks go through the page's own ``+1`` buttons.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from playwright.sync_api import Browser, expect

from leaderboard import selectors, services
from leaderboard.models import Board, Player
from tests.conftest import Stack
from tests.e2e.conftest import (
    Person,
    PersonFactory,
    controls_without_names,
    losing_first_answer,
    save_screenshot,
    sideways_overflow,
)

pytestmark = pytest.mark.e2e

LIVE_MS = 2000  # as for the chat: another person's click shows within 2 s

START = [
    (1, "Ada", 3),
    (2, "Grace", 2),
    (3, "Linus", 2),  # reached 2 after Grace, so ranks below her
    (4, "Margaret", 0),
    (5, "Guido", 0),
]


def make_board(name: str, scores: list[tuple[str, int]]) -> Board:
    """A committed board whose players reach their scores through ``score_add``, in order."""
    with transaction.atomic():
        board = services.board_create(name=name, players=[player for player, _ in scores])
    ids = dict(board.players.values_list("name", "id"))
    for player, score in scores:
        for _ in range(score):
            services.score_add(board_id=board.pk, player_id=ids[player])
    return board


@pytest.fixture
def board(live_db: Stack) -> Board:
    """Ada 3, Grace 2, Linus 2, Margaret 0, Guido 0: the ``START`` standings."""
    return make_board("Office league", [(name, score) for _, name, score in START])


def expected_standings(board: Board) -> list[tuple[int, str, int]]:
    """The standings in the database, in the page's (rank, name, score) form."""
    players = selectors.board_standings(board_id=board.pk)["players"]
    return [(rank, p["name"], p["score"]) for rank, p in enumerate(players, start=1)]


def open_pair(person: PersonFactory, board: Board, **options: Any) -> tuple[Person, Person]:
    ann, bob = person("Ann", **options), person("Bob", **options)
    ann.open_board(board.pk)
    bob.open_board(board.pk)
    assert ann.standings() == bob.standings() == START
    return ann, bob


# --- story 4: clicks ---------------------------------------------------------------------


def test_leaderboard_click_changes_score_and_rank_for_everyone(
    person: PersonFactory, browser: Browser, board: Board
) -> None:
    ann, bob = open_pair(person, board, width=560, height=560)

    ann.plus("Linus").click()
    expect(bob.score("Linus")).to_have_attribute("data-score", "3", timeout=LIVE_MS)
    # Mid-animation: the row is sliding past Grace and the digit is rolling.
    save_screenshot(browser, "leaderboard-click", [ann, bob], readme="leaderboard")

    moved = [(1, "Ada", 3), (2, "Linus", 3), (3, "Grace", 2), (4, "Margaret", 0), (5, "Guido", 0)]
    for someone in (ann, bob):
        expect(someone.score("Linus")).to_have_attribute("data-score", "3")
        assert someone.standings() == moved, someone.name
        # What a screen reader reads is the same number.
        expect(someone.score("Linus").locator(".visually-hidden")).to_have_text("3")
    assert expected_standings(board) == moved

    bob.plus("Linus").click()
    expect(ann.score("Linus")).to_have_attribute("data-score", "4", timeout=LIVE_MS)
    assert ann.standings()[0] == (1, "Linus", 4)


def test_leaderboard_quick_clicks_from_two_people_end_on_exact_totals(
    person: PersonFactory, browser: Browser, board: Board
) -> None:
    # Reduced motion: rows jump to their rank instead of sliding, so Playwright,
    # which clicks only still elements, need not wait for each slide to end.
    ann, bob = open_pair(person, board, reduced_motion=True)

    # Bursts of real mouse clicks from both windows; each click's request is in
    # flight while the next burst starts, so the two people's writes interleave.
    for _ in range(5):
        ann.plus("Guido").click(click_count=3)
        bob.plus("Guido").click(click_count=2)
        bob.plus("Margaret").click(click_count=2)
        ann.plus("Ada").click()

    final = [(1, "Guido", 25), (2, "Margaret", 10), (3, "Ada", 8), (4, "Grace", 2), (5, "Linus", 2)]
    for someone in (ann, bob):
        for _, name, score in final:
            expect(someone.score(name)).to_have_attribute("data-score", str(score))
        assert someone.standings() == final, someone.name
        expect(someone.page.locator("#click-error")).to_be_hidden()
    assert expected_standings(board) == final
    save_screenshot(browser, "leaderboard-quick-clicks", [ann, bob])


def test_leaderboard_click_whose_answer_was_lost_is_sent_again_and_counted_once(
    person: PersonFactory, board: Board
) -> None:
    ann, bob = open_pair(person, board)
    keys: list[str | None] = []

    ann.page.route("**/score-add/", losing_first_answer(keys))
    # The first send has no answer; the one that has is the retry's.
    with ann.page.expect_response(lambda r: r.url.endswith("/score-add/")) as retried:
        ann.plus("Guido").click()
    assert retried.value.status == 200
    assert retried.value.headers["idempotent-replayed"] == "true"

    for someone in (ann, bob):
        expect(someone.score("Guido")).to_have_attribute("data-score", "1", timeout=LIVE_MS)
    expect(ann.page.locator("#click-error")).to_be_hidden()
    assert len(keys) == 2
    assert keys[0] and keys[0] == keys[1]
    assert dict((name, score) for _, name, score in expected_standings(board))["Guido"] == 1


# --- story 5: reconnecting ---------------------------------------------------------------


def press(someone: Person, name: str) -> None:
    """Press (and hold) the mouse on ``name``'s ``+1`` button."""
    button = someone.plus(name).bounding_box()
    assert button is not None
    someone.page.mouse.move(button["x"] + button["width"] / 2, button["y"] + button["height"] / 2)
    someone.page.mouse.down()


def test_leaderboard_update_during_a_press_waits_so_the_click_counts_for_that_row(
    person: PersonFactory, board: Board
) -> None:
    ann, bob = open_pair(person, board)
    press(ann, "Linus")

    # While Ann's button is pressed, Bob's clicks lift Guido above Linus.
    bob.plus("Guido").click(click_count=3)
    expect(bob.score("Guido")).to_have_attribute("data-score", "3", timeout=LIVE_MS)
    expect(ann.page.locator("#standings")).to_have_attribute("data-held", "true", timeout=LIVE_MS)
    assert ann.standings() == START, "no row moved under Ann's pointer"

    ann.page.mouse.up()
    expect(ann.score("Linus")).to_have_attribute("data-score", "3", timeout=LIVE_MS)
    expect(bob.score("Linus")).to_have_attribute("data-score", "3", timeout=LIVE_MS)
    current = [(1, "Ada", 3), (2, "Guido", 3), (3, "Linus", 3), (4, "Grace", 2), (5, "Margaret", 0)]
    expect(ann.page.locator("#standings")).not_to_have_attribute("data-held", "true")
    assert ann.standings() == bob.standings() == expected_standings(board) == current


def test_leaderboard_press_never_released_does_not_freeze_the_standings(
    person: PersonFactory, board: Board
) -> None:
    ann, bob = open_pair(person, board)
    press(ann, "Linus")  # and never released: that happened outside the page

    bob.plus("Guido").click(click_count=3)
    expect(ann.page.locator("#standings")).to_have_attribute("data-held", "true", timeout=LIVE_MS)
    # Held for at most 2 s, then shown.
    expect(ann.score("Guido")).to_have_attribute("data-score", "3", timeout=LIVE_MS + 2000)
    assert ann.standings() == expected_standings(board)


def test_leaderboard_page_offline_while_others_click_shows_current_standings(
    person: PersonFactory, browser: Browser, board: Board
) -> None:
    ann, bob = open_pair(person, board)

    bob.context.set_offline(True)
    expect(bob.status).to_have_attribute("data-state", "lost")
    expect(bob.status).to_contain_text("Connection lost")
    ann.plus("Guido").click(click_count=3)
    ann.plus("Margaret").click()
    expect(ann.score("Guido")).to_have_attribute("data-score", "3")
    expect(ann.score("Margaret")).to_have_attribute("data-score", "1")
    assert bob.standings() == START, "offline, Bob's page got nothing"

    bob.context.set_offline(False)
    current = [(1, "Ada", 3), (2, "Guido", 3), (3, "Grace", 2), (4, "Linus", 2), (5, "Margaret", 1)]
    expect(bob.score("Guido")).to_have_attribute("data-score", "3")
    expect(bob.status).to_have_attribute("data-state", "restored")
    expect(bob.status).to_contain_text("Connection restored")
    assert bob.standings() == ann.standings() == expected_standings(board) == current
    assert bob.status_log() == ["live", "lost", "restored"]
    # Live again.
    ann.plus("Margaret").click()
    expect(bob.score("Margaret")).to_have_attribute("data-score", "2", timeout=LIVE_MS)
    save_screenshot(browser, "leaderboard-offline-and-back", [ann, bob])


# --- story 6: usability ------------------------------------------------------------------


def test_leaderboard_fits_375px_without_sideways_scroll(
    person: PersonFactory, browser: Browser, live_db: Stack
) -> None:
    # The longest names the validation allows, and scores with many digits.
    long_names = ["W" * 32, "Bartholomew-Maximilian Fairweather"[:32], "Li"]
    board = make_board("A rather long board name to wrap", [(n, 0) for n in long_names])
    Player.objects.filter(board=board).update(score=987_654_321)
    services.board_publish(board_id=board.pk)

    ann = person("Ann", width=375, height=700)
    ann.open_board(board.pk)
    ann.plus("Li").click()
    expect(ann.score("Li")).to_have_attribute("data-score", "987654322")
    assert ann.standings()[0] == (1, "Li", 987_654_322)
    assert not (found := sideways_overflow(ann.page)), found
    save_screenshot(browser, "leaderboard-375px", [ann])


def test_leaderboard_keyboard_clicks_keep_focus_while_the_row_moves(
    person: PersonFactory, board: Board
) -> None:
    ann = person("Ann")
    ann.open_board(board.pk)
    ann.plus("Linus").focus()
    ann.page.keyboard.press("Enter")
    ann.page.keyboard.press("Space")
    ann.page.keyboard.press("Enter")
    expect(ann.score("Linus")).to_have_attribute("data-score", "5")
    assert ann.standings()[0] == (1, "Linus", 5)
    expect(ann.plus("Linus")).to_be_focused()


def test_leaderboard_space_press_counts_when_the_row_climbs_between_down_and_up(
    person: PersonFactory, board: Board
) -> None:
    # A Space press clicks on key-up. If the focused row were taken out of the
    # list and put back at its new rank between key-down and key-up, Chromium
    # would drop the press: the click was lost (seen once in CI).
    ann = person("Ann")
    ann.open_board(board.pk)
    ann.plus("Linus").focus()
    ann.page.keyboard.down("Space")
    linus = board.players.get(name="Linus")
    services.score_add(board_id=board.pk, player_id=linus.pk)  # another person's click
    expect(ann.score("Linus")).to_have_attribute("data-score", "3")
    assert ann.standings()[1] == (2, "Linus", 3), "the row climbed past Grace"
    ann.page.keyboard.up("Space")
    expect(ann.score("Linus")).to_have_attribute("data-score", "4")
    assert ann.standings()[0] == (1, "Linus", 4)
    expect(ann.plus("Linus")).to_be_focused()


def test_leaderboard_controls_have_accessible_names(person: PersonFactory, board: Board) -> None:
    ann = person("Ann")
    ann.open_board(board.pk)
    page = ann.page
    for _, name, _ in START:
        expect(ann.plus(name)).to_be_visible()
    expect(page.get_by_role("button", name="+1 for", exact=False)).to_have_count(len(START))
    expect(page.get_by_role("list", name="Standings")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Live")
    assert controls_without_names(page) == []

"""Browser fixtures: Debian's Chromium, driven by Playwright, through the real stack.

Every page is loaded through the session's Pushpin (``stack.url``) from the app
under granian against the test database, exactly as a user's browser would.
Each person gets a separate browser context (own cookies, own network), so a
test with people A and B behaves like two people on two machines.

Artifacts, under ``test-artifacts/`` (gitignored):

- ``screenshots/<story>.png``: every story saves one, pass or fail.
- ``<test>/<person>-trace.zip`` and ``<test>/<person>-failure.png``: kept only
  when the test fails. Open a trace with ``playwright show-trace <zip>``.

The README's screenshots (``docs/screenshots/``) are taken by two of the
stories, but written there only with ``README_SCREENSHOTS=1`` (``make
screenshots``), so that a test run changes no tracked file.
"""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Route,
    expect,
    sync_playwright,
)

from devstack import ROOT
from tests.conftest import Stack

# Playwright cannot download its own browsers here; Debian's Chromium is the browser.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"

# A generous ceiling for waits that have no target in the issue; stories that do
# ("within 2 s") pass their own timeout.
expect.set_options(timeout=10_000)


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's report on the item, so fixtures can tell a failed test."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _failed(item: pytest.Item) -> bool:
    reports = item.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


@pytest.fixture(autouse=True)
def _allow_orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    """Playwright's sync API keeps an asyncio loop running on this thread, which
    makes Django refuse ORM calls (the test database flush, test data). The ORM
    here runs plainly synchronously, so lift the guard for browser tests only."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module.

    Module scope, not session: while Playwright runs, Django's async guard is
    tripped on this thread, and other modules' tests must run without it.
    """
    chromium = shutil.which("chromium")  # tests/conftest.py checked that there is one
    assert chromium is not None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# --- people -----------------------------------------------------------------------

STATUS_LOG_SCRIPT = """
() => {
  // Record every state the status element passes through, so a test can check
  // "lost, then restored" even when a state lasts only a moment.
  const status = document.getElementById("status");
  window.__statusLog = [status.dataset.state];
  new MutationObserver(() => {
    const state = status.dataset.state;
    if (window.__statusLog[window.__statusLog.length - 1] !== state) window.__statusLog.push(state);
  }).observe(status, { attributes: true, attributeFilter: ["data-state"] });
}
"""


@dataclass
class Person:
    """One person: a browser context of their own, with one page."""

    name: str
    context: BrowserContext
    page: Page
    page_errors: list[str] = field(default_factory=list)

    # --- chat ---

    def join_chat(self, room: str) -> None:
        """Join ``room`` through the join page, as a person would, and wait until live."""
        page = self.page
        page.goto("/chat/")
        page.get_by_role("textbox", name="Nickname").fill(self.name)
        page.get_by_role("textbox", name="Room").fill(room)
        page.get_by_role("button", name="Join").click()
        expect(page).to_have_url(re.compile(rf"/chat/{re.escape(quote(room))}/$"))
        expect(self.status).to_have_attribute("data-state", "live")
        page.evaluate(STATUS_LOG_SCRIPT)

    def slow_link(self, latency_ms: int) -> None:
        """Add ``latency_ms`` to every request of this person's page, as a far-away phone has."""
        cdp = self.context.new_cdp_session(self.page)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": latency_ms,
                "downloadThroughput": -1,
                "uploadThroughput": -1,
            },
        )

    @property
    def status(self) -> Locator:
        return self.page.locator("#status")

    @property
    def messages(self) -> Locator:
        return self.page.locator("#messages li.message")

    @property
    def message_input(self) -> Locator:
        return self.page.get_by_role("textbox", name="Message")

    def say(self, text: str) -> None:
        """Type a message and press Enter; wait until our own page shows it."""
        self.message_input.fill(text)
        self.message_input.press("Enter")
        expect(self.message_input).to_have_value("")
        expect(self.messages.locator(".text").filter(has_text=text).last).to_be_visible()

    def status_log(self) -> list[str]:
        return list(self.page.evaluate("window.__statusLog"))

    def shown(self) -> list[tuple[str, str]]:
        """(author, text) of every message on the page, top to bottom."""
        return [
            (item["from"], item["text"])
            for item in self.page.eval_on_selector_all(
                "#messages li.message",
                "items => items.map(li => ({from: li.querySelector('.from').textContent,"
                " text: li.querySelector('.text').textContent}))",
            )
        ]

    def shown_ids(self) -> list[int]:
        return [
            int(i) for i in self.messages.evaluate_all("items => items.map(li => li.dataset.id)")
        ]

    # --- leaderboard ---

    def open_board(self, board_id: int) -> None:
        """Open a board's page and wait until its stream is live."""
        self.page.goto(f"/leaderboard/{board_id}/")
        expect(self.status).to_have_attribute("data-state", "live")
        self.page.evaluate(STATUS_LOG_SCRIPT)

    def plus(self, name: str) -> Locator:
        """The ``+1`` button of the player called ``name``, found by its accessible name."""
        return self.page.get_by_role("button", name=f"+1 for {name}", exact=True)

    def score(self, name: str) -> Locator:
        """The score cell of ``name``'s row; its ``data-score`` is the number shown."""
        return self.page.locator("#standings li.player", has=self.plus(name)).locator(".score")

    def standings(self) -> list[tuple[int, str, int]]:
        """(rank, name, score) of every row, top to bottom, as the page shows them."""
        return [
            (int(row["rank"]), row["name"], int(row["score"]))
            for row in self.page.eval_on_selector_all(
                "#standings li.player",
                "rows => rows.map(li => ({rank: li.querySelector('.rank').textContent,"
                " name: li.querySelector('.name').textContent,"
                " score: li.querySelector('.score').dataset.score}))",
            )
        ]


PersonFactory = Callable[..., Person]


@pytest.fixture
def person(
    request: pytest.FixtureRequest, browser: Browser, live_db: Stack
) -> Iterator[PersonFactory]:
    """Make people: ``person("Ann")`` opens a fresh browser context on the stack (or on
    ``base_url``, another app server, or ``person("Ann", stack=other)``'s).

    Every context is traced; a failed test keeps each person's trace and a
    screenshot of each page under ``test-artifacts/<test>/``. An uncaught
    JavaScript error in any page fails the test.
    """
    people: list[Person] = []

    def make(
        name: str,
        *,
        width: int = 800,
        height: int = 700,
        reduced_motion: bool = False,
        base_url: str | None = None,
        stack: Stack | None = None,
    ) -> Person:
        context = browser.new_context(
            base_url=base_url or (stack or live_db).url,
            viewport={"width": width, "height": height},
            reduced_motion="reduce" if reduced_motion else "no-preference",
        )
        context.set_default_timeout(10_000)
        context.tracing.start(name=_safe(name), screenshots=True, snapshots=True)
        page = context.new_page()
        someone = Person(name=name, context=context, page=page)
        page.on("pageerror", lambda error: someone.page_errors.append(str(error)))
        people.append(someone)
        return someone

    yield make

    failed = _failed(request.node)
    outdir = ARTIFACTS / _safe(request.node.nodeid)
    if failed:
        # CI keeps only the report, not test-artifacts/: print what explains a
        # failure there (pytest shows it under "Captured stdout teardown").
        for someone in people:
            text = someone.page.locator("body").inner_text(timeout=2000)
            print(f"--- {someone.name}'s page {someone.page.url}\n{text[:1500]}")
        print(live_db.logs())
    for someone in people:
        if failed:
            outdir.mkdir(parents=True, exist_ok=True)
            someone.page.screenshot(path=outdir / f"{_safe(someone.name)}-failure.png")
            someone.context.tracing.stop(path=outdir / f"{_safe(someone.name)}-trace.zip")
        else:
            someone.context.tracing.stop()
        someone.context.close()
    errors = {p.name: p.page_errors for p in people if p.page_errors}
    if errors and not failed:
        pytest.fail(f"uncaught JavaScript errors in the pages: {errors}")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


# --- screenshots ------------------------------------------------------------------


def save_screenshot(
    browser: Browser, story: str, people: list[Person], *, readme: str | None = None
) -> Path:
    """Save the people's pages side by side as ``test-artifacts/screenshots/<story>.png``.

    With ``readme``, under ``README_SCREENSHOTS=1`` (``make screenshots``), also write
    ``docs/screenshots/<readme>.png`` for the README.
    """
    shots = [(p.name, p.page.screenshot()) for p in people]
    figures = "".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, png in shots
    )
    context = browser.new_context(viewport={"width": 400, "height": 300}, device_scale_factor=1)
    try:
        page = context.new_page()
        page.set_content(
            "<style>body{margin:0;display:flex;gap:16px;padding:16px;background:#c9ced8;"
            "width:max-content;font:600 15px system-ui,sans-serif}"
            "figure{margin:0}img{display:block;border:1px solid #888;border-radius:6px}"
            "figcaption{padding-top:6px;text-align:center}</style>" + figures
        )
        page.wait_for_function(
            "Array.from(document.images).every(i => i.complete && i.naturalWidth)"
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{story}.png"
        png = page.screenshot(full_page=True)
    finally:
        context.close()
    path.write_bytes(png)
    if readme is not None and os.environ.get("README_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (DOCS_SCREENSHOTS / f"{readme}.png").write_bytes(png)
    return path


# --- page checks shared by the stories --------------------------------------------

SIDEWAYS_OVERFLOW_SCRIPT = """
() => {
  // Anything that makes the page, or a box in it, scroll sideways, or that sticks
  // out of the viewport (which overflow-x: hidden would only hide).
  const width = document.documentElement.clientWidth;
  const describe = (el) =>
    el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.classList.length ? "." + Array.from(el.classList).join(".") : "");
  const found = [];
  for (const root of [document.documentElement, document.body]) {
    if (root.scrollWidth > width) found.push(`${describe(root)} is ${root.scrollWidth}px wide`);
  }
  for (const el of document.body.querySelectorAll("*")) {
    const style = getComputedStyle(el);
    if (style.display === "none" || style.visibility === "hidden") continue;
    const box = el.getBoundingClientRect();
    if (box.width <= 1 && box.height <= 1) continue;  // visually hidden labels
    if (box.right > width + 0.5 || box.left < -0.5) {
      found.push(`${describe(el)} spans ${Math.round(box.left)}..${Math.round(box.right)}px`);
    }
    if (["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1) {
      found.push(`${describe(el)} scrolls sideways (${el.scrollWidth} > ${el.clientWidth}px)`);
    }
  }
  return found;
}
"""


def sideways_overflow(page: Page) -> list[str]:
    """What would make ``page`` scroll sideways; empty when it fits its viewport."""
    return list(page.evaluate(SIDEWAYS_OVERFLOW_SCRIPT))


def controls_without_names(page: Page) -> list[str]:
    """Visible links, buttons and form fields whose accessible name is empty."""
    unnamed = []
    controls = page.locator("a[href], button, input:not([type=hidden]), select, textarea")
    for control in controls.all():
        if not control.is_visible():
            continue
        try:
            expect(control).to_have_accessible_name(re.compile(r"\S"), timeout=200)
        except AssertionError:
            unnamed.append(control.evaluate("el => el.outerHTML.slice(0, 120)"))
    return unnamed


def losing_first_answer(keys: list[str | None]) -> Callable[[Route], None]:
    """A route handler for a page's writes: the first POST reaches the server, but its
    answer is lost (the page never hears back); later ones pass. ``keys`` collects each
    POST's ``Idempotency-Key``."""

    def handle(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            route.fetch()  # reaches the server, which stores the write
            route.abort("connectionreset")  # but the page never hears back
        else:
            route.continue_()

    return handle

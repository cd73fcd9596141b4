"""Past one proxy: two Pushpins behind HAProxy, two app processes, a publisher and its standby.

Subscribers are split over both Pushpins; 500 chat messages are posted to both
app processes, straight to them. Every subscriber must get every message once
and in order while one of these happens:

- a Pushpin is killed with SIGKILL and started again: its subscribers
  reconnect through HAProxy with their Last-Event-ID;
- the active publisher is killed with SIGKILL: the standby takes over;
- one Pushpin's handler is stopped (SIGSTOP) for 30 s, so that its publish
  API takes connections but never answers: delivery through the other one goes
  on, the health probes answer within 3 s, and once it is resumed its
  subscribers get what they missed, in order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devstack.processes import wait_until
from devstack.pushpin import Pushpin
from devstack.sse import Subscriber
from tests.conftest import Stack, Subscribers, another_stack

pytestmark = pytest.mark.integration

MESSAGES = 500
STOPPED_SECONDS = 30


@pytest.fixture(scope="module")
def scaled(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    live = Stack(tmp_path_factory.mktemp("scaled"), app_count=2, proxies=2, standby=True)
    with another_stack(stack, live):
        yield live


class Poster:
    """Posts ``MESSAGES`` messages to the room, alternating between the app processes, in
    a thread; ``after(n, action)`` runs ``action`` once ``n`` are posted."""

    def __init__(self, stack: Stack, room: str, per_second: float = 60) -> None:
        self.stack, self.room, self.gap = stack, room, 1 / per_second
        self.posted: list[dict[str, Any]] = []
        self.actions: dict[int, Callable[[], None]] = {}
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def after(self, count: int, action: Callable[[], None]) -> Poster:
        self.actions[count] = action
        return self

    def start(self) -> Poster:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=10) as client:
                for n in range(MESSAGES):
                    if n in self.actions:
                        self.actions[n]()
                    app = self.stack.apps[n % len(self.stack.apps)]
                    response = client.post(
                        f"{app.url}/rooms/{self.room}/messages/",
                        data={"from": f"poster-{app.port}", "text": str(n)},
                    )
                    assert response.status_code == 200, response.text
                    self.posted.append(response.json())
                    time.sleep(self.gap)
        except BaseException as error:
            self.error = error

    def wait(self, timeout: float = 60) -> list[dict[str, Any]]:
        self._thread.join(timeout)
        assert self.error is None, self.error
        assert len(self.posted) == MESSAGES
        return self.posted


def split_subscribers(
    stack: Stack, room: str, subscribers: Subscribers
) -> dict[str, list[Subscriber]]:
    """Two subscribers on each Pushpin, and two through HAProxy; all reconnect as browsers do."""
    path = f"/rooms/{room}/events/"
    opened = {
        "pushpin-1": [Subscriber(stack.pushpins[0].url + path, reconnect=True) for _ in range(2)],
        "pushpin-2": [Subscriber(stack.pushpins[1].url + path, reconnect=True) for _ in range(2)],
        "haproxy": [stack.subscribe(path, reconnect=True) for _ in range(2)],
    }
    for group in opened.values():
        for sub in group:
            subscribers.append(sub)
            sub.wait_open()
    return opened


def assert_all_once_in_order(
    opened: dict[str, list[Subscriber]],
    posted: list[dict[str, Any]],
    room: str,
    timeout: float = 30,
) -> None:
    for name, group in opened.items():
        for sub in group:
            events = sub.wait_count("message", MESSAGES, timeout=timeout)
            assert [e.json() for e in events] == posted, name
            assert [e.id for e in events] == [f"room-{room}:{n}" for n in range(1, MESSAGES + 1)]


def kill_pushpin(pushpin: Pushpin) -> None:
    """SIGKILL every process of the instance: its runner, condure, proxy, handler and zurl
    (the runner's services run in process groups of their own; each names the workdir)."""
    subprocess.run(["pkill", "-KILL", "-f", str(pushpin.workdir)], check=False)
    wait_until(
        lambda: subprocess.run(["pgrep", "-f", str(pushpin.workdir)], check=False).returncode,
        timeout=10,
        what="every process of the killed Pushpin to be gone",
    )


def timed_get(url: str) -> tuple[int, float]:
    started = time.monotonic()
    response = httpx.get(url, timeout=10)
    return response.status_code, time.monotonic() - started


def test_a_pushpin_killed_and_restarted_loses_and_repeats_nothing(
    transactional_db: None, scaled: Stack, room: str, subscribers: Subscribers
) -> None:
    # Through HAProxy only: those on the killed one reconnect through it to the other.
    # leastconn spreads them over both Pushpins.
    path = f"/rooms/{room}/events/"
    opened = {"haproxy": [scaled.subscribe(path, reconnect=True) for _ in range(4)]}
    for sub in opened["haproxy"]:
        subscribers.append(sub)
        sub.wait_open()
    victim = scaled.pushpins[1]

    def kill_and_restart() -> None:
        kill_pushpin(victim)
        time.sleep(1)
        victim.restart()

    posted = Poster(scaled, room).after(150, kill_and_restart).start().wait()
    assert_all_once_in_order(opened, posted, room)
    assert sum(sub.reconnects >= 1 for sub in opened["haproxy"]) >= 1


def test_the_standby_takes_over_from_a_killed_publisher(
    transactional_db: None, scaled: Stack, room: str, subscribers: Subscribers
) -> None:
    opened = split_subscribers(scaled, room, subscribers)
    assert scaled.publisher is not None and scaled.standby is not None
    active, standby = scaled.publisher, scaled.standby
    taken_over = standby.process_log().count(standby.ACTIVE)

    def kill_active() -> None:
        assert active.process is not None and active.process.popen is not None
        os.killpg(active.process.popen.pid, signal.SIGKILL)

    posted = Poster(scaled, room).after(150, kill_active).start().wait()
    assert_all_once_in_order(opened, posted, room)
    assert standby.process_log().count(standby.ACTIVE) == taken_over + 1
    # The killed one comes back as the standby, so that the next test has both.
    scaled.publisher, scaled.standby = standby, active
    active.start(wait_standby=True)


def test_a_proxy_that_never_answers_holds_up_no_other_and_catches_up_after(
    transactional_db: None, scaled: Stack, room: str, subscribers: Subscribers
) -> None:
    opened = split_subscribers(scaled, room, subscribers)
    frozen = scaled.pushpins[1].handler_pid()
    stopped_at: list[float] = []

    def freeze() -> None:
        os.kill(frozen, signal.SIGSTOP)
        stopped_at.append(time.monotonic())

    try:
        poster = Poster(scaled, room).after(100, freeze).start()
        posted = poster.wait()
        # Delivery through the other Pushpin goes on while this one is stopped.
        for sub in opened["pushpin-1"]:
            events = sub.wait_count("message", MESSAGES, timeout=10)
            assert [e.json() for e in events] == posted
        assert time.monotonic() - stopped_at[0] < STOPPED_SECONDS
        # Every probe of every app answers within 3 s; the full report names the stuck proxy.
        for app in scaled.apps:
            for path in ("/healthz/live", "/healthz/ready", "/healthz"):
                status, seconds = timed_get(app.url + path)
                assert seconds < 3, (path, seconds)
                assert status == (503 if path == "/healthz" else 200), path
        report = httpx.get(scaled.app.url + "/healthz", timeout=10).json()["publisher"]
        stuck = {p["target"]: p for p in report["proxies"]}[scaled.pushpins[1].publish_url]
        assert stuck["up"] is False
        assert stuck["last_error"]
        assert report["ok"] is False and report["heartbeat_age_seconds"] < 3
        time.sleep(max(0.0, STOPPED_SECONDS - (time.monotonic() - stopped_at[0])))
    finally:
        os.kill(frozen, signal.SIGCONT)
    assert_all_once_in_order(opened, posted, room, timeout=60)
    wait_until(
        lambda: httpx.get(scaled.app.url + "/healthz", timeout=10).status_code == 200,
        timeout=15,
        what="the resumed proxy to be reported up again",
    )

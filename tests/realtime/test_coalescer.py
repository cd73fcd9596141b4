"""publish.Coalescer: at most one run per interval per key, and always a run after the last request."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from realtime import publish

INTERVAL = 0.2
WAIT = 5.0  # the hard timeout on every wait for a run


class Job:
    """Records each run's thread and start time; a run can be held open with ``hold``."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, float]] = []
        self.ran = threading.Condition()
        self.hold: threading.Event | None = None
        self.entered = threading.Event()
        self.fail = 0  # how many runs, from the next, raise

    def __call__(self) -> None:
        with self.ran:
            self.runs.append((threading.current_thread().name, time.monotonic()))
            self.ran.notify_all()
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(WAIT)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the database is away")

    def wait_runs(self, count: int) -> list[tuple[str, float]]:
        with self.ran:
            assert self.ran.wait_for(lambda: len(self.runs) >= count, WAIT), self.runs
            return list(self.runs)


@pytest.fixture
def coalescer() -> publish.Coalescer:
    return publish.Coalescer(lambda: INTERVAL)


def test_coalescer_first_request_runs_at_once_in_the_callers_thread(
    coalescer: publish.Coalescer,
) -> None:
    job = Job()
    coalescer.request("board-1", job)
    assert [name for name, _ in job.runs] == [threading.current_thread().name]


def test_coalescer_requests_within_the_interval_share_one_later_run(
    coalescer: publish.Coalescer,
) -> None:
    job = Job()
    for _ in range(5):
        coalescer.request("board-1", job)
    (_, first), (thread, second) = job.wait_runs(2)
    assert second - first >= INTERVAL
    assert thread != threading.current_thread().name
    # Nothing further was asked for, so nothing further runs: one more
    # request well after the interval runs at once, in this thread.
    time.sleep(INTERVAL * 2)  # let the interval pass (not a wait for a result)
    coalescer.request("board-1", job)
    assert len(job.runs) == 3
    assert job.runs[2][0] == threading.current_thread().name


def test_coalescer_request_during_a_run_gets_one_more_run_after_it(
    coalescer: publish.Coalescer,
) -> None:
    job = Job()
    job.hold = threading.Event()
    first = threading.Thread(target=coalescer.request, args=("board-1", job))
    first.start()
    assert job.entered.wait(WAIT)
    # The run in progress may have read before these requests' writes.
    for _ in range(3):
        coalescer.request("board-1", job)
    assert len(job.runs) == 1
    job.hold.set()
    job.wait_runs(2)
    first.join(WAIT)
    time.sleep(INTERVAL * 2)  # let any extra run show itself (none should)
    assert len(job.runs) == 2


def test_coalescer_keys_do_not_wait_for_each_other(coalescer: publish.Coalescer) -> None:
    one, two = Job(), Job()
    coalescer.request("board-1", one)
    coalescer.request("board-2", two)
    assert (len(one.runs), len(two.runs)) == (1, 1)


def test_coalescer_failed_run_is_logged_and_retried_without_another_request(
    coalescer: publish.Coalescer, caplog: Any
) -> None:
    job = Job()
    job.fail = 2
    coalescer.request("board-1", job)
    assert "coalesced job failed key=board-1 failures=1 retrying" in caplog.text
    assert "RuntimeError: the database is away" in caplog.text
    # Retried on a timer thread after 2 intervals, then again after 4, which succeeds.
    starts = [at for _, at in job.wait_runs(3)]
    assert starts[1] - starts[0] >= 2 * INTERVAL
    assert starts[2] - starts[1] >= 4 * INTERVAL
    assert "failures=2 retrying" in caplog.text
    time.sleep(INTERVAL * 2)  # let any extra run show itself (none should)
    assert len(job.runs) == 3


def test_coalescer_gives_up_after_retries_until_the_next_request(
    monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    coalescer = publish.Coalescer(lambda: 0.01)
    monkeypatch.setattr(coalescer, "RETRIES", 2)
    monkeypatch.setattr(coalescer, "RETRY_MAX", 0.05)
    job = Job()
    job.fail = 3
    coalescer.request("board-1", job)
    job.wait_runs(3)
    time.sleep(0.3)  # past every retry's wait: no fourth run should come
    assert len(job.runs) == 3
    assert "failures=3 giving up until the next request" in caplog.text
    coalescer.request("board-1", job)  # a new write runs it again, at once
    assert len(job.runs) == 4

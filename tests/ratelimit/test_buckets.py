"""The counter: a token bucket per (limit, client) row, taken by one atomic statement."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection

from devstack import ROOT
from ratelimit import buckets
from ratelimit.buckets import purge_full, take
from ratelimit.models import Bucket
from ratelimit.rates import Rate
from tests.conftest import environ_without_settings

# 3 at once, then one a second.
RATE = Rate(burst=3, per_second=1.0)
T0 = 1_000_000.0


def takes(count: int, *, now: float, client: str = "a") -> list[float]:
    return [take(scope="posts", client=client, rate=RATE, now=now) for _ in range(count)]


@pytest.mark.django_db
def test_take_allows_the_burst_then_says_how_long_to_wait() -> None:
    assert takes(4, now=T0) == [0.0, 0.0, 0.0, 1.0]
    [bucket] = Bucket.objects.values_list("scope", "client", "tokens", "updated")
    assert bucket == ("posts", "a", 0.0, T0)


@pytest.mark.django_db
def test_a_refused_request_takes_nothing() -> None:
    takes(3, now=T0)
    assert takes(5, now=T0 + 0.25) == [0.75] * 5
    assert takes(2, now=T0 + 1.0) == [0.0, 1.0]


@pytest.mark.django_db
def test_take_refills_at_the_rate_up_to_the_burst() -> None:
    takes(3, now=T0)
    assert takes(2, now=T0 + 2.0) == [0.0, 0.0]
    assert takes(1, now=T0 + 2.0) == [1.0]
    # A long pause refills the bucket to its burst, not beyond.
    assert takes(4, now=T0 + 3600) == [0.0, 0.0, 0.0, 1.0]


@pytest.mark.django_db
def test_a_clock_behind_the_bucket_refills_nothing() -> None:
    takes(3, now=T0)
    assert takes(1, now=T0 - 60) == [1.0]
    assert Bucket.objects.get().updated == T0


@pytest.mark.django_db
def test_each_client_and_each_limit_has_its_own_bucket() -> None:
    assert takes(4, now=T0, client="a") == [0.0, 0.0, 0.0, 1.0]
    assert takes(1, now=T0, client="b") == [0.0]
    assert take(scope="clicks", client="a", rate=RATE, now=T0) == 0.0
    assert sorted(Bucket.objects.values_list("scope", "client")) == [
        ("clicks", "a"),
        ("posts", "a"),
        ("posts", "b"),
    ]


@pytest.mark.django_db
def test_purge_full_deletes_only_buckets_that_refilled() -> None:
    takes(3, now=T0, client="old")
    takes(1, now=T0 + 2.5, client="recent")
    takes(1, now=T0, client="other-limit")
    Bucket.objects.filter(client="other-limit").update(scope="clicks")
    # At T0 + 3 the burst (3 tokens at 1/s) has refilled "old" but not "recent".
    assert purge_full(scope="posts", rate=RATE, now=T0 + 3.01) == 1
    assert sorted(Bucket.objects.values_list("client", flat=True)) == ["other-limit", "recent"]


@pytest.mark.django_db
def test_every_hundredth_take_purges_full_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    takes(1, now=T0, client="gone")
    monkeypatch.setattr(buckets, "_takes", iter(range(1, 200)))
    for n in range(99):
        take(scope="posts", client=f"c{n}", rate=RATE, now=T0 + 10)
    assert Bucket.objects.filter(client="gone").exists()
    take(scope="posts", client="last", rate=RATE, now=T0 + 10)
    assert not Bucket.objects.filter(client="gone").exists()
    assert Bucket.objects.count() == 100


@pytest.mark.django_db(transaction=True)
def test_concurrent_takes_never_exceed_the_burst() -> None:
    """Twenty threads, each on its own PostgreSQL connection, take at the same moment."""
    assert connection.vendor == "postgresql"
    rate = Rate(burst=5, per_second=5 / 3600)
    threads_count = 20
    barrier = threading.Barrier(threads_count)
    results: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            barrier.wait(timeout=10)
            wait = take(scope="clicks", client="flood", rate=rate)
            with lock:
                results.append(wait)
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == threads_count
    assert results.count(0.0) == 5
    assert Bucket.objects.get(client="flood").tokens == pytest.approx(0.0, abs=0.01)


def test_take_runs_on_sqlite(tmp_path: Path) -> None:
    """`make run`'s fallback database: the same statement, with MIN/MAX for LEAST/GREATEST."""
    env = environ_without_settings()
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "chatdemo.settings",
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        }
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0", "ratelimit"], cwd=ROOT, env=env, check=True)
    code = (
        "from ratelimit.buckets import take, purge_full; from ratelimit.rates import Rate; "
        "r = Rate(burst=2, per_second=1.0); "
        "t = lambda now: take(scope='posts', client='a', rate=r, now=now); "
        "print([t(100.0), t(100.0), t(100.0), t(100.5), t(101.0), t(101.0)], "
        "purge_full(scope='posts', rate=r, now=103.5))"
    )
    result = subprocess.run(
        [*manage, "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[0.0, 0.0, 1.0, 0.5, 0.0, 1.0] 1"

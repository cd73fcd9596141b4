"""`make bench` at smoke size: it runs, and it counts every delivery correctly.

Times are never asserted here (they belong to docs/BENCHMARKS.md); only that
each scenario ran end to end through real Pushpin, granian and PostgreSQL, and
that what was sent is exactly what every subscriber received.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from devstack import ROOT
from tests.conftest import postgres_url

pytestmark = pytest.mark.integration

SCENARIOS = [
    "fanout",
    "leaderboard",
    "ingest",
    "idle",
    "direct",
    "overload",
    "proxies",
    "storm",
    "flood",
    "restart",
    "cpu",
]


def bench_database_name() -> str:
    """A benchmark database beside this run's test database, so parallel runs never share one."""
    return f"{settings.DATABASES['default']['TEST']['NAME']}_bench"


def bench_database_url() -> str:
    return postgres_url(name=bench_database_name())


def drop_bench_database() -> None:
    """Drop the database that ``python -m bench`` created, so that no run leaves one behind."""
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(bench_database_name())
            )
        )


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("bench")
    try:
        run = subprocess.run(
            [
                sys.executable,
                *("-m", "bench", "--quick", "--out", str(out)),
                *("--database-url", bench_database_url()),
            ],
            cwd=ROOT,
            # The bench collects static files; into the run's temp dir, not the checkout.
            env={**os.environ, "DJANGO_STATIC_ROOT": str(out / "static")},
            capture_output=True,
            text=True,
            timeout=400,
        )
    finally:
        drop_bench_database()
    assert run.returncode == 0, f"python -m bench --quick failed:\n{run.stdout}\n{run.stderr}"
    # Fan-out has a summary table and a table of every run.
    assert (out / "tables.md").read_text().count("### ") == len(SCENARIOS) + 1
    assert (out / "latency.png").read_bytes().startswith(b"\x89PNG")
    return {name: json.loads((out / f"{name}.json").read_text())["results"] for name in SCENARIOS}


def test_bench_smoke_every_scenario_ran(results: dict[str, list[dict[str, Any]]]) -> None:
    assert {name: len(runs) > 0 for name, runs in results.items()} == dict.fromkeys(SCENARIOS, True)
    assert [r["target"] for r in results["fanout"]] == ["bare", "app"]
    assert [r["target"] for r in results["direct"]] == ["direct"]
    assert [r["target"] for r in results["proxies"]] == ["bare", "app", "app-2-proxies"]
    assert [(r["target"], r["post_via"]) for r in results["ingest"]] == [
        ("bare", "publish-api"),
        ("app", "pushpin"),
        ("app", "origin"),
    ]
    assert [r["post_via"] for r in results["leaderboard"]] == ["pushpin", "origin"]
    assert [r["scenario"] for r in results["cpu"]] == ["ingest", "leaderboard"]


def test_bench_smoke_restart_and_flood_measure_catching_up(
    results: dict[str, list[dict[str, Any]]],
) -> None:
    [restart] = results["restart"]
    assert restart["reconnected"]["opened"] == restart["subscribers"]
    assert restart["live_again_ms"]["count"] == restart["subscribers"]
    [flood] = results["flood"]
    assert len(flood["held_when_the_flood_ended"]) == flood["subscribers"]
    assert flood["caught_up_seconds_max"] >= 0


@pytest.mark.parametrize(
    "scenario", ["fanout", "ingest", "idle", "direct", "overload", "proxies", "flood", "restart"]
)
def test_bench_smoke_every_message_reaches_every_subscriber_once(
    results: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    for run in results[scenario]:
        d = run["deliveries"]
        assert run["connected"]["failed"] == 0
        assert d["expected"] > 0
        assert (d["received"], d["lost"], d["duplicates"], d["out_of_order"]) == (
            d["expected"],
            0,
            0,
            0,
        ), run
        assert run["latency_ms"]["count"] == d["expected"]


def test_bench_smoke_leaderboard_counts_every_click(
    results: dict[str, list[dict[str, Any]]],
) -> None:
    for run in results["leaderboard"]:
        assert run["publish"]["accepted"] == run["publish"]["sent"] > 0
        assert run["final_score"] == run["expected_score"] == run["publish"]["accepted"]
        assert run["subscribers_with_final_score"] == run["subscribers"]
        assert run["score_went_down"] == run["score_went_down_on_page"] == 0
        assert (run["update_ids_repeated"], run["update_ids_older_than_seen"]) == (0, 0)
        assert run["deliveries"]["received"] == run["deliveries"]["expected"]


def test_bench_smoke_idle_counts_app_requests(results: dict[str, list[dict[str, Any]]]) -> None:
    [run] = results["idle"]
    # Held for 2 s with a 600 s next-link timeout: nothing may reach the app.
    assert run["app_requests"] == 0
    # Each subscriber's own GET reached the app while connecting.
    assert run["connect_phase_app_requests"] >= run["subscribers"]


def test_bench_smoke_storm_reopens_every_stream_and_counts_every_click(
    results: dict[str, list[dict[str, Any]]],
) -> None:
    [run] = results["storm"]
    subscribers = run["subscribers"]
    for phase in (run["at_rest"], run["during_burst"]):
        assert phase["reconnected"] == {
            "opened": subscribers,
            "failed": 0,
            "retries": 0,
            "errors": {},
        }
        assert phase["to_stream_open_ms"]["count"] == subscribers
        assert phase["app_requests"]["stream_get"]["statuses"].keys() == {"200"}
        assert phase["lock_waits"]["samples"] > 0
    # At rest each client resumes from the latest id: no update is replayed to it.
    assert run["at_rest"]["to_first_update_ms"]["count"] == 0
    assert run["during_burst"]["to_first_update_ms"]["count"] == subscribers
    clicks = run["burst"]["clicks"]
    assert clicks["accepted"] == clicks["sent"] > 0
    assert run["final_score"] == run["expected_score"] == clicks["accepted"]
    assert run["subscribers_with_final_score"] == subscribers
    assert (
        run["score_went_down"],
        run["update_ids_repeated"],
        run["update_ids_older_than_seen"],
    ) == (0, 0, 0)

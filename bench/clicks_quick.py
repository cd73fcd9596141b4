"""Quick leaderboard measurement: click throughput and click-to-update latency.

    .venv/bin/python -m bench.clicks_quick [--clients 20] [--clicks 50] [--subscribers 3] [--direct]

Starts its own app (daphne) and Pushpin on free ports against the database in
``DATABASE_URL`` (default: a ``chatdemo_clicks`` database it creates and
migrates), creates a board with five players, opens SSE subscribers on it,
then has ``--clients`` threads post ``--clicks`` clicks each, as fast as they
get answers. It prints:

- throughput: committed clicks per second over the whole run, wall clock;
- POST latency: from sending a click to its answer;
- click-to-update latency: from sending a click to the moment a subscriber
  receives an ``update`` in which that player has (at least) the score the
  click answered with; every subscriber, every click.

A small check for the leaderboard work, not the benchmark suite: the full
benchmarks live in ``bench/`` (``make bench``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from chatdemo.devserver import dev_environment, ensure_database
from chatdemo.stack import (
    ROOT,
    AppServer,
    PublisherServer,
    Pushpin,
    PushpinPorts,
    free_port,
    running,
)
from tests.sse import SSEEvent, Subscriber

PLAYERS = ["Ann", "Bob", "Cleo", "Dan", "Eve"]


class TimedSubscriber(Subscriber):
    """A subscriber that notes when each (player, score) was first seen."""

    def __init__(self, url: str) -> None:
        self.first_seen: dict[tuple[int, int], float] = {}
        self.lock = threading.Lock()
        super().__init__(url)

    def _append(self, event: SSEEvent) -> None:
        now = time.monotonic()
        if event.event == "update":
            with self.lock:
                for player in event.json()["players"]:
                    self.first_seen.setdefault((player["id"], player["score"]), now)
        super()._append(event)


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"p50 {at(0.50):.1f} ms, p95 {at(0.95):.1f} ms, p99 {at(0.99):.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms (mean {statistics.mean(ordered) * 1000:.1f} ms)"
    )


def manage(*args: str, env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def create_board(env: dict[str, str]) -> int:
    out = manage("leaderboard_board", "create", "Bench", *PLAYERS, env=env)
    match = re.search(r"created board (\d+)", out)
    assert match, out
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--clicks", type=int, default=50, help="clicks per client")
    parser.add_argument("--subscribers", type=int, default=3)
    parser.add_argument("--direct", action="store_true", help="talk to the app, no Pushpin")
    args = parser.parse_args()

    env = dev_environment()
    env["DATABASE_URL"] = os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chatdemo_clicks"
    )
    env["DJANGO_LOG_LEVEL"] = "WARNING"
    ensure_database(env["DATABASE_URL"])
    manage("migrate", "--no-input", "-v", "0", env=env)

    with tempfile.TemporaryDirectory(prefix="clicks-") as tmp:
        app_port = free_port()
        pushpin = Pushpin(
            workdir=Path(tmp) / "pushpin", origins=[app_port], ports=PushpinPorts.free()
        )
        if args.direct:
            env["GRIP_URL"] = ""
        else:
            env["GRIP_URL"] = pushpin.grip_url()
        app = AppServer(port=app_port, env=env, log_path=Path(tmp) / "app.log")
        # The publisher takes the board's snapshots, in direct mode too.
        publisher = PublisherServer(env=env, log_path=Path(tmp) / "publisher.log")
        components = (app, publisher) if args.direct else (app, publisher, pushpin)
        with running(*components):
            base = app.url if args.direct else pushpin.url
            board_id = create_board(env)
            with httpx.Client(base_url=base, timeout=30) as client:
                players = [p["id"] for p in client.get(f"/boards/{board_id}/").json()["players"]]
            subs = [TimedSubscriber(f"{base}/boards/{board_id}/") for _ in range(args.subscribers)]
            for sub in subs:
                sub.wait_count("update", 1)

            clicks: list[tuple[int, int, float, float]] = []  # player, score, sent, answered
            clicks_lock = threading.Lock()

            def clicker(n: int) -> None:
                mine = []
                with httpx.Client(base_url=base, timeout=30) as client:
                    for i in range(args.clicks):
                        player = players[(n + i) % len(players)]
                        sent = time.monotonic()
                        response = client.post(f"/boards/{board_id}/players/{player}/score-add/")
                        response.raise_for_status()
                        mine.append((player, response.json()["score"], sent, time.monotonic()))
                with clicks_lock:
                    clicks.extend(mine)

            started = time.monotonic()
            try:
                with concurrent.futures.ThreadPoolExecutor(max_workers=args.clients) as pool:
                    list(pool.map(clicker, range(args.clients)))
            except httpx.HTTPError:
                print(app.process.log_tail(400) if app.process else "", file=sys.stderr)
                raise
            elapsed = time.monotonic() - started

            total = args.clients * args.clicks
            with httpx.Client(base_url=base, timeout=30) as client:
                final = client.get(f"/boards/{board_id}/").json()
            for sub in subs:
                sub.wait_for(
                    lambda s: bool(s.of_type("update")) and s.of_type("update")[-1].json() == final,
                    timeout=60,
                    what="the final standings",
                )
                sub.close()

            delivery = [
                sub.first_seen[(player, score)] - sent
                for sub in subs
                for player, score, sent, _ in clicks
            ]
            counted = sum(p["score"] for p in final["players"])
            print(f"mode: {'direct (no proxy)' if args.direct else 'through Pushpin'}")
            print(
                f"clicks: {total} from {args.clients} concurrent clients; counted {counted} "
                f"({'exact' if counted == total else 'MISMATCH'})"
            )
            print(f"throughput: {total / elapsed:.0f} clicks/s ({elapsed:.2f} s)")
            print(f"POST latency: {percentiles([done - sent for _, _, sent, done in clicks])}")
            print(f"click-to-update latency at {len(subs)} subscribers: {percentiles(delivery)}")
            return 0 if counted == total else 1


if __name__ == "__main__":
    sys.exit(main())

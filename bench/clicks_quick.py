"""Quick leaderboard measurement: click throughput and click-to-update latency.

    .venv/bin/python -m bench.clicks_quick [--clients 20] [--clicks 50] [--subscribers 3] [--direct]

Starts its own app and Pushpin on free ports, as the benchmarks do
(bench.stacks.start_app), against the database in ``DATABASE_URL`` (default: a
``chatdemo_clicks`` database it creates and migrates), creates a board with five players, opens SSE subscribers on it,
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
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.scenarios import percentiles
from bench.stacks import create_board, prepare_database, start_app
from devstack.sse import SSEEvent, Subscriber

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

    def seen_at(self, player: int, score: int) -> float:
        """When an update first showed ``player`` with at least ``score``: updates are
        snapshots, so one of them may carry several clicks at once."""
        with self.lock:
            return min(t for (p, s), t in self.first_seen.items() if p == player and s >= score)


def summary(seconds: Sequence[float]) -> str:
    ms = percentiles(seconds)
    if not ms["count"]:
        return "none"
    return f"p50 {ms['p50']} ms, p90 {ms['p90']} ms, p99 {ms['p99']} ms, max {ms['max']} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--clicks", type=int, default=50, help="clicks per client")
    parser.add_argument("--subscribers", type=int, default=3)
    parser.add_argument("--direct", action="store_true", help="talk to the app, no Pushpin")
    args = parser.parse_args()

    database_url = os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chatdemo_clicks"
    )
    prepare_database(database_url)

    with tempfile.TemporaryDirectory(prefix="clicks-") as tmp:
        # The publisher takes the board's snapshots, in direct mode too.
        target = start_app(Path(tmp), database_url=database_url, proxy=not args.direct)
        app = target.app
        try:
            base = target.url
            board_id = create_board(database_url, "Bench", PLAYERS)
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
                sub.seen_at(player, score) - sent
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
            print(f"POST latency: {summary([done - sent for _, _, sent, done in clicks])}")
            print(f"click-to-update latency at {len(subs)} subscribers: {summary(delivery)}")
            return 0 if counted == total else 1
        finally:
            target.stop()


if __name__ == "__main__":
    sys.exit(main())

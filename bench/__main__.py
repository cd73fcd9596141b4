"""`make bench`: run the benchmark scenarios and write bench/results/.

    python -m bench                       # every scenario at full size (about 55 minutes)
    python -m bench --quick               # smoke sizes, seconds (what `make test` runs)
    python -m bench --scenario fanout --scenario ingest
    python -m bench --scenario storm      # 1,000 board streams reconnect during a burst of clicks
    python -m bench --pushpin-set handler.message_rate=2500   # try a pushpin.conf value

Each scenario starts its own stack (Pushpin from the repo's pushpin.conf, the
app under granian (chatdemo.serve), its own PostgreSQL database) on free ports, drives it from
separate load processes, and writes ``<out>/<scenario>.json``. The tables are
printed and written to ``<out>/tables.md``; the latency plot to
``<out>/latency.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import environment, flood, report, restart, scenarios, storm
from bench.load import raise_nofile_limit
from bench.scenarios import Settings

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chatdemo_bench"
RESULTS = Path(__file__).resolve().parent / "results"

Plan = dict[str, list[Callable[[Settings], dict[str, Any]]]]


def fanout_pair(
    subscribers: int, rate: float, messages: int, repeat: int = 1
) -> list[Callable[..., Any]]:
    """Bare Pushpin, then the app, at the same size, ``repeat`` times: each ratio is
    measured in one run, and alternating keeps a shared box's changing load fair."""
    runs = [
        lambda s, k=kind, r=r: scenarios.fanout(
            s, kind=k, subscribers=subscribers, rate=rate, messages=messages, repeat=r
        )
        for r in range(repeat)
        for kind in ("bare", "app")
    ]
    for run in runs:
        run.subscribers = subscribers  # type: ignore[attr-defined]
    return runs


def plans(idle_hold: float) -> dict[str, Plan]:
    full: Plan = {
        "fanout": [
            *fanout_pair(100, 5, 50, repeat=3),
            *fanout_pair(1000, 5, 50, repeat=3),
            *fanout_pair(5000, 5, 50, repeat=3),
            *fanout_pair(10000, 1, 50),
        ],
        "leaderboard": [
            lambda s, c=c: scenarios.leaderboard(s, clickers=c, subscribers=1000, clicks=3000)
            for c in (8, 32)
        ]
        + [
            lambda s, v=v: scenarios.leaderboard(
                s, clickers=32, subscribers=100, clicks=3000, post_via=v
            )
            for v in ("pushpin", "origin")
        ],
        # Bare Pushpin first: the most this box delivers to 100 subscribers.
        "ingest": [
            lambda s, p=p, k=k, v=v: scenarios.ingest(
                s, posters=p, subscribers=100, posts=3000, kind=k, post_via=v
            )
            for p in (8, 32)
            for k, v in (("bare", "pushpin"), ("app", "pushpin"), ("app", "origin"))
        ],
        # The app at its saturation, many times: the runs where anything is lost,
        # repeated or out of order (recovery under load) are what this counts.
        "saturation": [
            lambda s: scenarios.ingest(s, posters=8, subscribers=100, posts=2000, kind="app")
        ]
        * 20,
        # Both sizes at once, on two stacks: the hold is long (past one 600 s
        # next-link timeout) and idling is cheap.
        "idle": [
            lambda s: scenarios.idle_together(s, sizes=(1000, 10000), spread=60, hold=idle_hold)
        ],
        "direct": [
            lambda s: scenarios.fanout(s, kind="direct", subscribers=1000, rate=5, messages=50)
        ],
        "overload": [
            lambda s: scenarios.overload(s, subscribers=5000, rate=20, messages=200),
        ],
        # Past one proxy: the same fan-out through two Pushpins behind HAProxy against one,
        # with the same bare-Pushpin baseline, alternating.
        "proxies": [
            lambda s, n=n, k=k, p=p, r=r: scenarios.fanout(
                s, kind=k, subscribers=n, rate=5, messages=50, repeat=r, proxies=p
            )
            for n in (1000, 5000)
            for r in range(2)
            for k, p in (("bare", 1), ("app", 1), ("app", 2))
        ],
        # Every stream of a board reconnects at once: at rest, then during a burst of clicks.
        "storm": [lambda s: storm.storm(s, subscribers=1000, clickers=16)] * 3,
        # 200 posters at once for 20 s, 3 subscribers: how late they are, how fast they
        # catch up once it ends.
        "flood": [lambda s: flood.flood(s)],
        # 1,000 subscribers of a room that takes 50 posts/s; Pushpin restarts; each client
        # reconnects with Last-Event-ID: how long until every one is live again.
        "restart": [lambda s: restart.restart(s)],
        # CPU per request, the app's and the publisher's apart: 2,000 posts, then 2,000
        # clicks, 8 at a time, straight to the app (as the issue measured), 10 subscribers.
        "cpu": [
            lambda s: scenarios.ingest(
                s, posters=8, subscribers=10, posts=2000, kind="app", post_via="origin"
            ),
            lambda s: scenarios.leaderboard(
                s, clickers=8, subscribers=10, clicks=2000, post_via="origin"
            ),
        ],
    }
    quick: Plan = {
        "fanout": fanout_pair(20, 20, 10),
        "leaderboard": [
            lambda s, v=v: scenarios.leaderboard(
                s, clickers=4, subscribers=10, clicks=60, post_via=v
            )
            for v in ("pushpin", "origin")
        ],
        "ingest": [
            lambda s, k=k, v=v: scenarios.ingest(
                s, posters=4, subscribers=10, posts=40, kind=k, post_via=v
            )
            for k, v in (("bare", "pushpin"), ("app", "pushpin"), ("app", "origin"))
        ],
        "idle": [lambda s: scenarios.idle_together(s, sizes=(20,), spread=1, hold=2)],
        "direct": [
            lambda s: scenarios.fanout(s, kind="direct", subscribers=20, rate=20, messages=10)
        ],
        "overload": [lambda s: scenarios.overload(s, subscribers=50, rate=100, messages=40)],
        "proxies": [
            lambda s, k=k, p=p: scenarios.fanout(
                s, kind=k, subscribers=20, rate=20, messages=10, proxies=p
            )
            for k, p in (("bare", 1), ("app", 1), ("app", 2))
        ],
        "storm": [
            lambda s: storm.storm(s, subscribers=20, clickers=4, lead=0.5, tail=0.5, settle=30)
        ],
        "flood": [lambda s: flood.flood(s, posters=20, seconds=2, settle=30)],
        "restart": [lambda s: restart.restart(s, subscribers=20, rate=20, before=1, after=2)],
        "cpu": [
            lambda s: scenarios.ingest(
                s, posters=2, subscribers=2, posts=40, kind="app", post_via="origin"
            ),
            lambda s: scenarios.leaderboard(
                s, clickers=2, subscribers=2, clicks=40, post_via="origin"
            ),
        ],
    }
    return {"full": full, "quick": quick}


def parse_overrides(values: list[str]) -> dict[str, dict[str, str]]:
    overrides: dict[str, dict[str, str]] = {}
    for value in values:
        name, sep, setting = value.partition("=")
        section, dot, key = name.partition(".")
        if not sep or not dot:
            raise SystemExit(f"--pushpin-set wants SECTION.KEY=VALUE, got {value!r}")
        overrides.setdefault(section, {})[key] = setting
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes: seconds, not minutes")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[
            "fanout",
            "leaderboard",
            "ingest",
            "saturation",
            "idle",
            "direct",
            "overload",
            "proxies",
            "storm",
            "flood",
            "cpu",
            "restart",
        ],
        help="run only these (repeatable); default: all",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--pushpin-set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a pushpin.conf value for this run (recorded in the results)",
    )
    parser.add_argument("--app-processes", type=int, default=1, help="app server processes")
    parser.add_argument(
        "--subscribers",
        type=int,
        action="append",
        help="fan-out: run only these sizes (repeatable), e.g. to try a --pushpin-set value",
    )
    parser.add_argument(
        "--idle-hold", type=float, default=660, help="seconds the idle scenario holds (full size)"
    )
    args = parser.parse_args(argv)

    raise_nofile_limit()
    overrides = parse_overrides(args.pushpin_set)
    size = "quick" if args.quick else "full"
    plan = plans(args.idle_hold)[size]
    chosen = args.scenario or list(plan)
    if unknown := [name for name in chosen if name not in plan]:
        raise SystemExit(f"no {size} plan for {', '.join(unknown)}")
    args.out.mkdir(parents=True, exist_ok=True)

    from bench.stacks import prepare_database

    prepare_database(args.database_url)
    meta = environment.describe(
        database_url=args.database_url,
        overrides=overrides,
        size=size,
        app_processes=args.app_processes,
    )
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        settings = Settings(
            workdir=Path(tmp),
            database_url=args.database_url,
            overrides=overrides,
            app_processes=args.app_processes,
        )
        for name in chosen:
            results = []
            runs = plan[name]
            if args.subscribers and name == "fanout":
                runs = [r for r in runs if getattr(r, "subscribers", None) in args.subscribers]
            for run in runs:
                started = time.time()
                load_before = os.getloadavg()[0]
                answer = run(settings)
                for result in answer if isinstance(answer, list) else [answer]:
                    result["wall_seconds"] = round(time.time() - started, 1)
                    # Other work on the box shows here: its 1-minute load before and after.
                    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                    # The code that ran: results of two checkouts can share a table.
                    result["git_commit"] = meta["git_commit"]
                    print(report.one_line(result), flush=True)
                    results.append(result)
            path = args.out / f"{name}.json"
            path.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    tables = report.tables(args.out)
    (args.out / "tables.md").write_text(tables)
    print(tables)
    if (args.out / "fanout.json").exists():
        report.plot(args.out / "fanout.json", args.out / "latency.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

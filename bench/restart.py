"""A Pushpin restart under a busy room: how long until every subscriber is live again.

``subscribers`` streams follow one room while messages are posted straight to the
app at ``rate`` per second, before, during and after a restart of Pushpin. When
Pushpin is back, every client reconnects as EventSource does, with
``Last-Event-ID`` set to the last id it received, and catches up from the log.

A subscriber is live again once it holds every message accepted before Pushpin
came back (they arrive in order, so: once it has the last of them). Reported: the
time from Pushpin's return until each subscriber is live again, the app's
requests per second meanwhile (stream GETs, Pushpin's recovery requests among them,
and posts), and, as every run checks, nothing lost, repeated or out of order.
"""

from __future__ import annotations

import datetime
import json
import re
import time
import uuid
from typing import Any

from bench.load import call_all
from bench.scenarios import (
    CONNECT_CONCURRENCY,
    Settings,
    chat_posts,
    check_deliveries,
    percentiles,
    post_summary,
    subscribe,
    target_running,
    wait_and_collect,
    worker_count,
    workers_running,
)
from bench.stacks import Usage

_LINE = re.compile(r"time=(\S+ \S+) .* method=(\S+) path=(\S+) status=(\d+)")


def _requests(lines: list[str], since: float, until: float) -> dict[str, int]:
    """The app's answered requests between two times, by kind."""
    counts = {"stream_gets": 0, "posts": 0, "other": 0}
    for line in lines:
        match = _LINE.search(line)
        if match is None:
            continue
        stamp, method, path, _status = match.groups()
        at = (
            datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
            .replace(tzinfo=datetime.UTC)
            .timestamp()
        )
        if not since <= at <= until:
            continue
        if method == "GET" and path.endswith("/events/"):
            counts["stream_gets"] += 1
        elif method == "POST":
            counts["posts"] += 1
        else:
            counts["other"] += 1
    return counts


def restart(
    settings: Settings,
    *,
    subscribers: int = 1000,
    rate: float = 50.0,
    before: float = 5.0,
    after: float = 15.0,
    settle: float = 120.0,
) -> dict[str, Any]:
    with (
        target_running("app", settings, f"restart-{subscribers}") as target,
        workers_running(worker_count(subscribers) + 1) as workers,
    ):
        assert target.pushpin is not None
        poster, clients = workers[0], workers[1:]
        room = f"bench-{uuid.uuid4().hex[:10]}"
        connected = subscribe(clients, target.port, [f"/rooms/{room}/events/"] * subscribers)
        usage = Usage({**target.components(), "clients": [w.pid for w in workers]})
        usage.start()
        start = time.time() + 0.5
        count = int(rate * (before + after))
        # Straight to the app: posts go on while Pushpin is down.
        poster.send(
            "post",
            host="127.0.0.1",
            port=target.apps[0].port,
            requests=chat_posts(room, count, rate, start),
            concurrency=4,
            key="json-id",
        )
        time.sleep(0.5 + before)
        down = time.time()
        target.pushpin.restart()
        up = time.time()
        reconnected = call_all(
            clients,
            "reconnect",
            [{"concurrency": CONNECT_CONCURRENCY, "timeout": 30}] * len(clients),
        )
        results = poster.receive()
        sent = {k: at for k, at, _done, status in results if 200 <= status < 300}
        collected = wait_and_collect(clients, "message", len(sent), settle)
        processes = usage.stop()
        lines = target.request_log()
    deliveries, latencies = check_deliveries(
        collected, sent, key=lambda data: json.loads(data)["id"]
    )
    # The last message accepted before Pushpin was back: a subscriber holding it holds
    # every one before it.
    before_up = [k for k, at in sent.items() if at < up]
    mark = max(before_up, key=lambda k: sent[k]) if before_up else None
    live_again = []
    for sub in collected:
        arrived = [
            at
            for name, _id, data, at in sub["events"]
            if name == "message" and json.loads(data)["id"] == mark
        ]
        if arrived:
            live_again.append(max(0.0, arrived[0] - up))
    everyone = max(live_again, default=0.0)
    during = _requests(lines, up, up + everyone)
    return {
        "scenario": "restart",
        "target": "app",
        "subscribers": subscribers,
        "rate_per_s": rate,
        "connected": connected,
        "reconnected": {
            key: sum(part[key] for part in reconnected) for key in ("opened", "failed", "retries")
        },
        "pushpin_down_seconds": round(up - down, 2),
        "publish": post_summary(results),
        "deliveries": deliveries,
        "live_again_ms": percentiles(live_again),
        "all_live_again_seconds": round(everyone, 2),
        "app_requests_until_all_live": during,
        "app_requests_per_s_until_all_live": (
            round(sum(during.values()) / everyone, 1) if everyone else None
        ),
        "latency_ms": percentiles(latencies),
        "processes": processes,
    }


def table(results: list[dict[str, Any]]) -> str:
    """One row per run: the time until every subscriber was live again, and the app's load."""
    from bench.report import _ms, _table

    rows = []
    for r in results:
        live = r["live_again_ms"]
        during = r["app_requests_until_all_live"]
        rows.append(
            [
                r.get("git_commit", "-"),
                r["subscribers"],
                r["rate_per_s"],
                "{opened}/{failed}/{retries}".format(**r["reconnected"]),
                f"{_ms(live['p50'])} / {r['all_live_again_seconds']}",
                f"{during['stream_gets']} / {during['posts']}",
                _ms(r["app_requests_per_s_until_all_live"]),
                "{lost} / {duplicates} / {out_of_order}".format(**r["deliveries"]),
            ]
        )
    return _table(
        [
            "code",
            "subscribers",
            "posts/s",
            "reopened/failed/retries",
            "live again: p50 ms / all, s",
            "app stream GETs / posts until all live",
            "app requests/s until all live",
            "lost / repeated / out of order",
        ],
        rows,
    )

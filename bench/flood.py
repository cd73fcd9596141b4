"""The flood: many posters at once for a while, a few subscribers on the room.

What it measures is how late the subscribers are, not how much the app takes:

- while the flood lasts, how many of the accepted messages each subscriber already
  holds (received live, against those that came later, through recovery);
- once the flood ends, how long until every subscriber holds every accepted message;
- Pushpin's recovery requests (``?link=next``) the app answered, and its log lines
  that say why a stream left live delivery (a ``prev-id`` gap, a full queue).

It also checks what every run checks: nothing accepted is lost, repeated or out of
order, on any subscriber.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from bench.scenarios import (
    Settings,
    chat_posts,
    check_deliveries,
    percentiles,
    post_summary,
    subscribe,
    target_running,
    wait_and_collect,
    workers_running,
)
from bench.stacks import Usage

# What Pushpin's handler logs (at log level 3 and up) when a stream leaves live delivery.
_WHY = {
    "prev_id_gaps": "last ID inconsistency",
    "queue_full_drops": "publish queue at max",
}


def flood(
    settings: Settings,
    *,
    posters: int = 200,
    seconds: float = 20.0,
    subscribers: int = 3,
    settle: float = 120.0,
) -> dict[str, Any]:
    """``posters`` clients post to one room as fast as they are answered for ``seconds``,
    through Pushpin, while ``subscribers`` streams of that room receive."""
    with (
        target_running("app", settings, f"flood-{posters}") as target,
        workers_running(2) as workers,
    ):
        poster, client = workers
        room = f"bench-{uuid.uuid4().hex[:10]}"
        connected = subscribe([client], target.port, [f"/rooms/{room}/events/"] * subscribers)
        assert target.pushpin is not None
        handler_before = target.pushpin.log("pushpin-handler")
        requests_before = len(target.request_log())
        usage = Usage({**target.components(), "clients": [w.pid for w in workers]})
        usage.start()
        started = time.time()
        poster.call(
            "post_start",
            host="127.0.0.1",
            port=target.port,
            requests=chat_posts(room, 1000, None, 0.0),
            concurrency=posters,
            key="json-id",
        )
        time.sleep(seconds)
        results = poster.call("post_stop")
        ended = time.time()
        sent = {k: at for k, at, _done, status in results if 200 <= status < 300}
        collected = wait_and_collect([client], "message", len(sent), settle)
        processes = usage.stop()
        deliveries, latencies = check_deliveries(
            collected, sent, key=lambda data: json.loads(data)["id"]
        )
        handler_log = target.pushpin.log("pushpin-handler")[len(handler_before) :]
        app_requests = target.request_log()[requests_before:]
        assert target.publisher is not None
        publisher_log = target.publisher.log_path.read_text(errors="replace").splitlines()
    held_at_end = [sum(1 for e in sub["events"] if e[3] <= ended) for sub in collected]
    caught_up = [
        max((e[3] for e in sub["events"] if e[0] == "message"), default=ended) - ended
        for sub in collected
    ]
    return {
        "scenario": "flood",
        "target": "app",
        "posters": posters,
        "seconds": seconds,
        "subscribers": subscribers,
        "connected": connected,
        "publish": post_summary(results),
        "deliveries": deliveries,
        "held_when_the_flood_ended": held_at_end,
        "caught_up_seconds_after_the_flood": [round(c, 2) for c in caught_up],
        "caught_up_seconds_max": round(max(caught_up, default=0.0), 2),
        "recovery_requests": sum(1 for line in app_requests if "link=next" in line),
        "pushpin_log": {name: handler_log.count(text) for name, text in _WHY.items()},
        "publisher_warnings": [line for line in publisher_log if "WARNING" in line][:8],
        "first_gaps": [line for line in handler_log.splitlines() if _WHY["prev_id_gaps"] in line][
            :8
        ],
        "latency_ms": percentiles(latencies),
        "run_seconds": round(time.time() - started, 1),
        "processes": processes,
    }


def table(results: list[dict[str, Any]]) -> str:
    """One row per run: how late the subscribers were, how soon they caught up."""
    from bench.report import _statuses, _table

    rows = [
        [
            r.get("git_commit", "-"),
            r["posters"],
            r["seconds"],
            f"{r['publish']['accepted']} ({r['publish']['accepted_per_s']}/s)",
            _statuses(r["publish"]["statuses"]),
            f"{min(r['held_when_the_flood_ended'], default=0)}",
            r["caught_up_seconds_max"],
            "{lost} / {duplicates} / {out_of_order}".format(**r["deliveries"]),
        ]
        for r in results
    ]
    return _table(
        [
            "code",
            "posters",
            "flood s",
            "accepted (per s)",
            "answers",
            "held by each subscriber when it ended (fewest)",
            "all held after the end, s",
            "lost / repeated / out of order",
        ],
        rows,
    )

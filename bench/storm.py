"""The reconnect storm: every subscriber of a board drops its stream and reconnects at once,
first at rest, then during a burst of clicks on that board.

What a storm costs shows in three places, each measured per phase:

- the clients: from the moment a client starts to connect to its ``stream-open``
  (the stream GET answered, through Pushpin) and to its first ``update``;
- the app: the requests it answered (its own log line per request, with its time)
  and its CPU;
- PostgreSQL: the sessions waiting for a lock, sampled from ``pg_stat_activity``.

A client reconnects as EventSource does: with ``Last-Event-ID`` set to the last id
it received. The end checks that no click was lost and that every subscriber ends
on the final standings, with no update id repeated or older than one it saw.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from bench.load import Worker, call_all
from bench.scenarios import (
    CONNECT_CONCURRENCY,
    Settings,
    _get,
    _post_port,
    percentiles,
    post_summary,
    subscribe,
    target_running,
    worker_count,
    workers_running,
)
from bench.stacks import Target, Usage, create_board

# The sampler's own query, over the bench database's other sessions.
_LOCK_WAITERS = """
    SELECT wait_event, query FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
"""
_REQUEST = re.compile(r"method=(\S+) path=(\S+) status=(\d+) ms=([\d.]+)")


class LockWaits:
    """Samples the sessions waiting for a lock in the bench database every ``interval`` s.

    A sample is a count at one instant: waits shorter than the interval are
    caught in proportion to their length, so the time-weighted sum of the
    counts estimates the session-seconds spent waiting, not the number of waits.
    Each waiting statement is recorded with its numbers blanked, to tell whose
    waits they are (a click's row lock, a channel lock, ...).
    """

    def __init__(self, database_url: str, interval: float = 0.05) -> None:
        self.url = database_url.replace("postgres://", "postgresql://", 1)
        self.interval = interval
        self.samples: list[tuple[float, list[tuple[str, str]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                at = time.time()
                rows = conn.execute(_LOCK_WAITERS).fetchall()
                waiting = [(str(event), _statement_shape(str(query))) for event, query in rows]
                self.samples.append((at, waiting))
                self._stop.wait(max(0.0, self.interval - (time.time() - at)))

    def last_event_id(self, channel: str) -> int:
        """The channel's latest event id: how many events have been stored on it."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT last_id FROM realtime_channel WHERE name = %s", (channel,)
            ).fetchone()
        return int(row[0]) if row else 0

    def window(self, start: float, end: float) -> dict[str, Any]:
        """What the samples between ``start`` and ``end`` show."""
        inside = [
            (at, waiting, at - before)
            for (before, _), (at, waiting) in zip(self.samples, self.samples[1:], strict=False)
            if start <= at <= end
        ]
        seconds = sum(dt for _, _, dt in inside)
        waited = sum(len(w) * dt for _, w, dt in inside)
        by_statement: dict[str, float] = {}
        for _, waiting, dt in inside:
            for event, shape in waiting:
                key = f"{event}: {shape}"
                by_statement[key] = by_statement.get(key, 0.0) + dt
        return {
            "samples": len(inside),
            "mean_interval_ms": round(seconds / len(inside) * 1000, 1) if inside else None,
            "samples_with_waiters": sum(1 for _, w, _ in inside if w),
            "max_waiting": max((len(w) for _, w, _ in inside), default=0),
            "mean_waiting": round(waited / seconds, 3) if seconds else 0.0,
            "waiting_session_s": round(waited, 3),
            "by_statement_s": {
                k: round(v, 3) for k, v in sorted(by_statement.items(), key=lambda kv: -kv[1])
            },
        }


def _statement_shape(query: str) -> str:
    shape = re.sub(r"\d+", "N", " ".join(query.split()))
    # The start names the table; the end says whether it locks (FOR UPDATE).
    return shape if len(shape) <= 100 else f"{shape[:70]} … {shape[-27:]}"


def _app_requests(lines: Sequence[str], board_path: str) -> dict[str, Any]:
    """The app's request log lines by kind: stream GETs of the board (Pushpin's recovery
    requests included: its log has no query string), clicks, and anything else."""
    kinds: dict[str, list[tuple[int, float]]] = {"stream_get": [], "click": [], "other": []}
    for line in lines:
        match = _REQUEST.search(line)
        if match is None:
            continue
        method, path, status, ms = match.groups()
        if method == "GET" and path == board_path:
            kind = "stream_get"
        elif method == "POST" and path.endswith("/score-add/"):
            kind = "click"
        else:
            kind = "other"
        kinds[kind].append((int(status), float(ms)))
    out: dict[str, Any] = {}
    for kind, answered in kinds.items():
        statuses: dict[str, int] = {}
        for status, _ in answered:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        out[kind] = {
            "answered": len(answered),
            "statuses": statuses,
            "app_ms": percentiles([ms / 1000 for _, ms in answered]),
        }
    return out


def _recoveries(target: Target) -> int:
    """Pushpin's recovery requests so far, one log line per stream: streams on the same
    link share one fetch, so fewer of them reach the app."""
    assert target.pushpin is not None
    return target.pushpin.log("pushpin-handler").count("?link=next")


def _phase(
    clients: Sequence[Worker],
    target: Target,
    locks: LockWaits,
    *,
    board_path: str,
    concurrency: int,
    timeout: float,
    tail: float,
) -> dict[str, Any]:
    """Reconnect every client at once and wait until each is open, then ``tail`` seconds
    (Pushpin fetches a new stream's next link about 1 s after it opens)."""
    channel = f"board-{board_path.strip('/').rpartition('/')[2]}"
    before = len(target.request_log())
    recoveries_before = _recoveries(target)
    events_before = locks.last_event_id(channel)
    usage = Usage(target.components())
    usage.start()
    started = time.time()
    answers = call_all(
        clients, "reconnect", [{"concurrency": concurrency, "timeout": timeout}] * len(clients)
    )
    opened = time.time()
    time.sleep(tail)
    ended = time.time()
    processes = usage.stop()
    requests = _app_requests(target.request_log()[before:], board_path)
    recoveries = _recoveries(target) - recoveries_before
    events_stored = locks.last_event_id(channel) - events_before
    answered = sum(kind["answered"] for kind in requests.values())
    app_cpu = processes.get("app", {}).get("cpu_s")
    collected: list[dict[str, Any]] = []
    for part in call_all(clients, "collect", [{"clear": False}] * len(clients)):
        collected.extend(part)
    to_open, to_update = [], []
    for sub in collected:
        if sub["opened_at"] is not None:
            to_open.append(sub["opened_at"] - sub["started"])
        first = next(
            (at for name, _, _, at in sub["events"] if name == "update" and at >= sub["started"]),
            None,
        )
        if first is not None:
            to_update.append(first - sub["started"])
    return {
        "reconnected": {
            **{k: sum(a[k] for a in answers) for k in ("opened", "failed", "retries")},
            "errors": _merged([a["errors"] for a in answers]),
        },
        "started": started,
        "storm_seconds": round(opened - started, 2),
        "window_seconds": round(ended - started, 2),
        "to_stream_open_ms": percentiles(to_open),
        "to_first_update_ms": percentiles(to_update),
        "app_requests": requests,
        "pushpin_recovery_requests": recoveries,
        # By the publisher's snapshots, and by the old code's stream GETs during clicks.
        "board_events_stored": events_stored,
        "app_cpu_ms_per_request": round(app_cpu * 1000 / answered, 2)
        if app_cpu is not None and answered
        else None,
        "lock_waits": locks.window(started, ended),
        "processes": processes,
        "_ended": ended,
    }


def _merged(counts: Sequence[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in counts:
        for key, value in part.items():
            out[key] = out.get(key, 0) + value
    return out


def _clicks_in(results: Sequence[tuple[Any, float, float, int]], start: float, end: float) -> Any:
    done = [r for r in results if 200 <= r[3] < 300 and start <= r[2] < end]
    span = end - start
    return {"accepted": len(done), "per_s": round(len(done) / span, 1) if span > 0 else None}


def storm(
    settings: Settings,
    *,
    subscribers: int,
    clickers: int,
    players: int = 5,
    lead: float = 3.0,
    tail: float = 2.0,
    post_via: str = "origin",
    concurrency: int = CONNECT_CONCURRENCY,
    settle: float = 120.0,
) -> dict[str, Any]:
    """``subscribers`` streams on one board reconnect at once (``concurrency`` connecting
    at a time per load process), first with no clicks, then
    ``lead`` seconds into a burst of ``clickers`` clients clicking the board's players as
    fast as they are answered (``post_via``: straight to the app, as behind Fastly,
    or through Pushpin). The burst goes on until ``tail`` seconds after the storm.

    Why not all 1,000 in flight at once: Pushpin 1.36 answers some new requests 502
    without passing them on when many are in flight (its debug log: "target error
    state=1, condition=8"): 300 to 458 of 1,000 with all of them in flight, 0 to 126
    at 256 on a loaded 2-core box, none at 64. A 502 is counted and retried, as a
    reload would; EventSource itself gives up on one.
    """
    board = create_board(
        settings.database_url, f"storm-{uuid.uuid4().hex[:8]}", [f"P{i}" for i in range(players)]
    )
    board_path = f"/boards/{board}/"
    with (
        target_running("app", settings, f"storm-{subscribers}") as target,
        workers_running(worker_count(subscribers) + 1) as workers,
        LockWaits(settings.database_url) as locks,
    ):
        clicker, clients = workers[0], workers[1:]
        ids = [p["id"] for p in json.loads(_get(target.port, board_path))["players"]]
        connected = subscribe(clients, target.port, [board_path] * subscribers)
        call_all(
            clients, "wait", [{"event": "update", "count": 1, "timeout": settle}] * len(clients)
        )
        time.sleep(tail)  # Pushpin's first recovery requests for the new streams
        phase = {"board_path": board_path, "concurrency": concurrency, "timeout": settle}
        at_rest = _phase(clients, target, locks, **phase, tail=tail)

        clicks = [
            (0.0, f"{board_path}players/{ids[i % len(ids)]}/score-add/", b"", {})
            for i in range(len(ids) * 8)
        ]
        burst_started = time.time()
        clicker.call(
            "post_start",
            host="127.0.0.1",
            port=_post_port(target, post_via),
            requests=clicks,
            concurrency=clickers,
            key="json-id-score",
        )
        time.sleep(lead)
        clicks_only = locks.window(burst_started, time.time())
        during = _phase(clients, target, locks, **phase, tail=tail)
        results = clicker.call("post_stop")
        final_text = _get(target.port, board_path).decode()
        call_all(
            clients,
            "wait",
            [{"event": "update", "timeout": settle, "data_equals": final_text}] * len(clients),
        )
        collected: list[dict[str, Any]] = []
        for part in call_all(clients, "collect", [{}] * len(clients)):
            collected.extend(part)
    accepted = [r for r in results if 200 <= r[3] < 300]
    final = json.loads(final_text)["players"]
    checks = _check_streams(collected, final_text)
    storm_start, storm_end = during.pop("started"), during.pop("_ended")
    at_rest.pop("started"), at_rest.pop("_ended")
    return {
        "scenario": "storm",
        "target": "app",
        "post_via": post_via,
        "subscribers": subscribers,
        "clickers": clickers,
        "players": players,
        "in_flight_per_load_process": concurrency,
        "connected": connected,
        "at_rest": at_rest,
        "during_burst": during,
        "burst": {
            "clicks": post_summary(results),
            "before_storm": _clicks_in(results, burst_started, storm_start),
            "during_storm": _clicks_in(results, storm_start, storm_end),
            "lock_waits_before_storm": clicks_only,
        },
        "expected_score": len(accepted),
        "final_score": sum(p["score"] for p in final),
        **checks,
    }


def _check_streams(collected: Sequence[dict[str, Any]], final_text: str) -> dict[str, Any]:
    """Across its reconnects, what each subscriber's ``update`` events show."""
    at_final = went_down = repeated = older = 0
    for sub in collected:
        updates = [(i, d) for name, i, d, _ in sub["events"] if name == "update"]
        at_final += bool(updates) and updates[-1][1] == final_text
        seen: set[int] = set()
        newest = -1
        best: dict[int, int] = {}
        for event_id, data in updates:
            number = int(str(event_id).rpartition(":")[2]) if event_id else -1
            if number in seen:
                repeated += 1
            elif number < newest:
                older += 1
            seen.add(number)
            newest = max(newest, number)
            for player in json.loads(data)["players"]:
                if player["score"] < best.get(player["id"], 0):
                    went_down += 1
                best[player["id"]] = max(best.get(player["id"], 0), player["score"])
    return {
        "subscribers_with_final_score": at_final,
        "score_went_down": went_down,
        "update_ids_repeated": repeated,
        "update_ids_older_than_seen": older,
    }

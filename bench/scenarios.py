"""The benchmark scenarios. Each returns a JSON-ready dict; none asserts a time.

Every delivery is checked, not sampled: each subscriber's events are matched
against what was sent, so a result says exactly how many deliveries were
expected, received, lost, duplicated or out of order.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import itertools
import json
import math
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import Worker, call_all, form
from bench.stacks import (
    Overrides,
    Target,
    Usage,
    create_board,
    start_app,
    start_bare,
)

HOST = "127.0.0.1"
# Connections a load process opens at once, and subscribers per load process.
CONNECT_CONCURRENCY = 64
SUBSCRIBERS_PER_WORKER = 2500


@dataclass
class Settings:
    """What every scenario needs to know about the run."""

    workdir: Path
    database_url: str
    overrides: Overrides | None
    app_processes: int = 1
    app_env: dict[str, str] | None = None


def percentiles(values: Sequence[float]) -> dict[str, float | int | None]:
    """p50/p90/p99/max in milliseconds (nearest-rank) of latencies in seconds."""
    if not values:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000, 1)

    return {
        "count": len(ordered),
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": round(ordered[-1] * 1000, 1),
    }


# --- building blocks ---------------------------------------------------------------


@contextmanager
def target_running(kind: str, settings: Settings, name: str, **options: Any) -> Iterator[Target]:
    workdir = settings.workdir / f"{name}-{uuid.uuid4().hex[:6]}"
    if kind == "bare":
        target = start_bare(workdir, overrides=settings.overrides)
    else:
        target = start_app(
            workdir,
            database_url=settings.database_url,
            proxy=kind == "app",
            app_processes=settings.app_processes if kind == "app" else 1,
            overrides=settings.overrides,
            app_env=settings.app_env,
            **options,
        )
    try:
        yield target
    finally:
        target.stop()


@contextmanager
def workers_running(count: int) -> Iterator[list[Worker]]:
    workers = [Worker() for _ in range(count)]
    try:
        yield workers
    finally:
        for worker in workers:
            worker.close()


def worker_count(subscribers: int) -> int:
    return max(1, math.ceil(subscribers / SUBSCRIBERS_PER_WORKER))


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    return [list(items[i::parts]) for i in range(parts)]


def subscribe(
    workers: Sequence[Worker],
    port: int,
    paths: Sequence[str],
    *,
    spread: float = 0.0,
    headers: dict[str, str] | None = None,
    timeout: float = 20,
) -> dict[str, int]:
    answers = call_all(
        workers,
        "subscribe",
        [
            {
                "host": HOST,
                "port": port,
                "paths": part,
                "headers": headers or {},
                "spread": spread,
                "concurrency": CONNECT_CONCURRENCY,
                "timeout": timeout,
            }
            for part in split(paths, len(workers))
        ],
    )
    return {key: sum(a[key] for a in answers) for key in ("opened", "failed", "retries")}


def wait_and_collect(
    workers: Sequence[Worker],
    event: str,
    count: int,
    timeout: float,
    data_equals: str | None = None,
) -> list[dict[str, Any]]:
    condition = {"event": event, "count": count, "timeout": timeout, "data_equals": data_equals}
    call_all(workers, "wait", [condition] * len(workers))
    collected: list[dict[str, Any]] = []
    for part in call_all(workers, "collect", [{}] * len(workers)):
        collected.extend(part)
    return collected


def post(
    poster: Worker,
    port: int,
    requests: list[tuple[float, str, bytes, dict[str, str]]],
    *,
    concurrency: int,
    key: str,
) -> list[tuple[Any, float, float, int]]:
    return poster.call(
        "post", host=HOST, port=port, requests=requests, concurrency=concurrency, key=key
    )


def chat_posts(room: str, count: int, rate: float | None, start: float) -> list[Any]:
    """POSTs of ``count`` chat messages, at ``rate`` per second (None: as fast as possible)."""
    requests = []
    for i in range(count):
        body, headers = form({"from": "bench", "text": f"message {i}"})
        at = start + i / rate if rate else 0.0
        requests.append((at, f"/rooms/{room}/messages/", body, headers))
    return requests


def bare_publishes(
    channel: str, count: int, rate: float | None, start: float, first: int = 0
) -> list[Any]:
    """Raw publishes to Pushpin's HTTP publish API, each carrying its own index."""
    requests = []
    for i in range(first, first + count):
        content = f'event: message\nid: {i}\ndata: {{"id": {i}}}\n\n'
        body = json.dumps(
            {"items": [{"channel": channel, "formats": {"http-stream": {"content": content}}}]}
        ).encode()
        at = start + (i - first) / rate if rate else 0.0
        requests.append((at, "/publish/", body, {"Content-Type": "application/json"}))
    return requests


def check_deliveries(
    collected: list[dict[str, Any]],
    sent: dict[Any, float],
    *,
    event: str = "message",
    key: Callable[[str], Any] = lambda data: json.loads(data)["id"],
    ordered: Sequence[Any] | None = None,
) -> tuple[dict[str, Any], list[float]]:
    """Match every subscriber's events against ``sent`` (key -> send time).

    ``ordered`` is the order every subscriber must see (the channel's order);
    by default the keys sorted.
    """
    order = list(ordered) if ordered is not None else sorted(sent)
    position = {k: i for i, k in enumerate(order)}
    latencies: list[float] = []
    received = lost = duplicates = out_of_order = unexpected = 0
    resets = errors = disconnected = 0
    for sub in collected:
        keys = []
        for name, _event_id, data, at in sub["events"]:
            if name == "stream-reset":
                resets += 1
            elif name == "stream-error":
                errors += 1
            elif name == event:
                k = key(data)
                if k not in sent:
                    unexpected += 1
                    continue
                keys.append(k)
                latencies.append(at - sent[k])
        unique = set(keys)
        received += len(keys)
        duplicates += len(keys) - len(unique)
        lost += len(sent) - len(unique)
        ranks = [position[k] for k in keys]
        out_of_order += sum(1 for a, b in itertools.pairwise(ranks) if b <= a)
        disconnected += bool(sub["closed"])
    return (
        {
            "subscribers": len(collected),
            "expected": len(sent) * len(collected),
            "received": received,
            "lost": lost,
            "duplicates": duplicates,
            "out_of_order": out_of_order,
            "unexpected": unexpected,
            "stream_resets": resets,
            "stream_errors": errors,
            "disconnected": disconnected,
        },
        latencies,
    )


def post_summary(results: list[tuple[Any, float, float, int]]) -> dict[str, Any]:
    ok = [r for r in results if 200 <= r[3] < 300]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r[3])] = statuses.get(str(r[3]), 0) + 1
    span = (max(r[2] for r in ok) - min(r[1] for r in ok)) if ok else 0.0
    return {
        "sent": len(results),
        "accepted": len(ok),
        "statuses": statuses,
        "seconds": round(span, 3),
        "accepted_per_s": round(len(ok) / span, 1) if span else None,
        "latency_ms": percentiles([r[2] - r[1] for r in ok]),
    }


# --- scenarios ---------------------------------------------------------------------


def fanout(
    settings: Settings,
    *,
    kind: str,
    subscribers: int,
    rate: float,
    messages: int,
    settle: float = 60.0,
    repeat: int = 0,
    proxies: int = 1,
) -> dict[str, Any]:
    """One channel, ``subscribers`` streams, ``messages`` at ``rate``/s; every delivery timed.

    kind "app": chat POSTs through Pushpin (``proxies`` > 1: through HAProxy in front of
    that many Pushpins); "direct": chat POSTs to the app with no proxy; "bare": raw
    publishes through bare Pushpin.
    """
    name = f"fanout-{kind}-{subscribers}"
    options = {"proxies": proxies} if proxies > 1 else {}
    with (
        target_running(kind, settings, name, **options) as target,
        workers_running(worker_count(subscribers) + 1) as workers,
    ):
        poster, clients = workers[0], workers[1:]
        channel = f"bench-{uuid.uuid4().hex[:10]}"
        path = f"/bare/{channel}/" if kind == "bare" else f"/rooms/{channel}/events/"
        connect_started = time.time()
        connected = subscribe(clients, target.port, [path] * subscribers)
        connect_seconds = time.time() - connect_started
        # One message first, not measured: it pays for what the first publish of a
        # process sets up (the app's publisher thread and its connection to Pushpin).
        if kind == "bare":
            warm_up = bare_publishes(channel, 1, None, 0.0, first=-1)
            post(poster, target.publish_port, warm_up, concurrency=1, key="index")
        else:
            post(
                poster, target.port, chat_posts(channel, 1, None, 0.0), concurrency=1, key="json-id"
            )
        wait_and_collect(clients, "message", 1, settle)
        usage = Usage({**target.components(), "clients": [w.pid for w in workers]})
        usage.start()
        start = time.time() + 0.5
        if kind == "bare":
            requests = bare_publishes(channel, messages, rate, start)
            results = post(poster, target.publish_port, requests, concurrency=4, key="index")
        else:
            requests = chat_posts(channel, messages, rate, start)
            results = post(poster, target.port, requests, concurrency=4, key="json-id")
        sent = {k: at for k, at, _done, status in results if 200 <= status < 300}
        collected = wait_and_collect(clients, "message", len(sent), settle)
        elapsed = time.time() - start
        processes = usage.stop()
        key = (lambda data: json.loads(data)["id"]) if kind != "bare" else _bare_key
        deliveries, latencies = check_deliveries(collected, sent, key=key)
    return {
        "scenario": "fanout",
        "target": kind if proxies == 1 else f"{kind}-{proxies}-proxies",
        "repeat": repeat,
        "subscribers": subscribers,
        "rate_per_s": rate,
        "messages": messages,
        "connected": connected,
        "connect_seconds": round(connect_seconds, 1),
        "publish": post_summary(results),
        "deliveries": deliveries,
        "latency_ms": percentiles(latencies),
        "seconds": round(elapsed, 1),
        "processes": processes,
    }


def _bare_key(data: str) -> int:
    return int(json.loads(data)["id"])


def _post_port(target: Target, post_via: str) -> int:
    """Where writes go: through Pushpin (``make run``), or straight to the app.

    Behind Fastly Fanout the edge hands only the SSE paths to Fanout (docs/DEPLOY.md),
    so in production POSTs reach the app without crossing the GRIP proxy.
    """
    if post_via == "pushpin":
        return target.port
    if post_via == "origin":
        return target.apps[0].port
    raise ValueError(f"post_via must be 'pushpin' or 'origin', not {post_via!r}")


def ingest(
    settings: Settings,
    *,
    posters: int,
    subscribers: int,
    posts: int,
    kind: str = "app",
    post_via: str = "pushpin",
    settle: float = 60.0,
) -> dict[str, Any]:
    """``posters`` concurrent clients post ``posts`` chat messages as fast as they are
    accepted while ``subscribers`` streams receive them all.

    kind "bare": raw publishes to bare Pushpin's publish API instead, as fast as
    it accepts them: what this box's Pushpin delivers to the same subscribers.
    """
    with (
        target_running(kind, settings, f"ingest-{kind}-{posters}") as target,
        workers_running(worker_count(subscribers) + 1) as workers,
    ):
        poster, clients = workers[0], workers[1:]
        room = f"bench-{uuid.uuid4().hex[:10]}"
        path = f"/bare/{room}/" if kind == "bare" else f"/rooms/{room}/events/"
        connected = subscribe(clients, target.port, [path] * subscribers)
        usage = Usage({**target.components(), "clients": [w.pid for w in workers]})
        usage.start()
        if kind == "bare":
            requests = bare_publishes(room, posts, None, 0.0)
            port, key = target.publish_port, "index"
        else:
            requests = chat_posts(room, posts, None, 0.0)
            port, key = _post_port(target, post_via), "json-id"
        results = post(poster, port, requests, concurrency=posters, key=key)
        sent = {k: at for k, at, _done, status in results if 200 <= status < 300}
        collected = wait_and_collect(clients, "message", len(sent), settle)
        processes = usage.stop()
        deliveries, latencies = check_deliveries(
            collected, sent, key=_bare_key if kind == "bare" else lambda d: json.loads(d)["id"]
        )
    return {
        "scenario": "ingest",
        "target": kind,
        "post_via": "publish-api" if kind == "bare" else post_via,
        "posters": posters,
        "subscribers": subscribers,
        "connected": connected,
        "publish": post_summary(results),
        "deliveries": deliveries,
        "latency_ms": percentiles(latencies),
        "processes": processes,
    }


def idle(
    settings: Settings, *, subscribers: int, spread: float, hold: float, settle: float = 60.0
) -> dict[str, Any]:
    """Hold ``subscribers`` idle streams (connects spread over ``spread`` s) for ``hold``
    seconds and count the requests that reach the app meanwhile. Then one message
    must still reach every subscriber, once."""
    with (
        target_running("app", settings, f"idle-{subscribers}") as target,
        workers_running(worker_count(subscribers) + 1) as workers,
    ):
        poster, clients = workers[0], workers[1:]
        room = f"bench-{uuid.uuid4().hex[:10]}"
        connect_started = time.time()
        connected = subscribe(
            clients,
            target.port,
            [f"/rooms/{room}/events/"] * subscribers,
            spread=spread,
        )
        connect_seconds = time.time() - connect_started
        # Pushpin fetches each new stream's next link about 1 s after the hold
        # (it closes the race between the app's answer and the subscription);
        # that belongs to connecting, not to idling.
        time.sleep(3)
        before = _request_lines(target)
        usage = Usage({**target.components(), "clients": [w.pid for w in workers]})
        usage.start()
        time.sleep(hold)  # the measurement: nothing happens but what idleness costs
        processes = usage.stop()
        during = _request_lines(target)[len(before) :]
        results = post(
            poster, target.port, chat_posts(room, 1, None, 0.0), concurrency=1, key="json-id"
        )
        sent = {k: at for k, at, _done, status in results if 200 <= status < 300}
        collected = wait_and_collect(clients, "message", len(sent), settle)
        deliveries, latencies = check_deliveries(collected, sent)
    recovery = [line for line in during if "link=next" in line]
    return {
        "scenario": "idle",
        "target": "app",
        "subscribers": subscribers,
        "connect_spread_s": spread,
        "connected": connected,
        "connect_seconds": round(connect_seconds, 1),
        "hold_s": hold,
        "connect_phase_app_requests": len(before),
        "app_requests": len(during),
        "app_recovery_requests": len(recovery),
        "app_requests_per_s": round(len(during) / hold, 3),
        "requests_per_subscriber_per_10_min": round(len(during) / subscribers * 600 / hold, 3),
        "processes": processes,
        "deliveries": deliveries,
        "latency_ms": percentiles(latencies),
    }


def idle_together(
    settings: Settings, *, sizes: Sequence[int], spread: float, hold: float
) -> list[dict[str, Any]]:
    """:func:`idle` for each size at the same time, each on its own stack."""
    with concurrent.futures.ThreadPoolExecutor(len(sizes)) as pool:
        runs = [pool.submit(idle, settings, subscribers=n, spread=spread, hold=hold) for n in sizes]
        return [run.result() for run in runs]


def _request_lines(target: Target) -> list[str]:
    return target.request_log()


def overload(
    settings: Settings, *, subscribers: int, rate: float, messages: int, settle: float = 180.0
) -> dict[str, Any]:
    """Offer more deliveries per second than the box can make, then wait: every
    message must arrive late or be replaced by a stream-reset, never vanish."""
    result = fanout(
        settings, kind="app", subscribers=subscribers, rate=rate, messages=messages, settle=settle
    )
    result["scenario"] = "overload"
    result["offered_deliveries_per_s"] = subscribers * rate
    return result


def _get(port: int, path: str) -> bytes:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("GET", path, headers={"Accept": "application/json"})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        return body
    finally:
        connection.close()


def leaderboard(
    settings: Settings,
    *,
    clickers: int,
    subscribers: int,
    clicks: int,
    players: int = 5,
    post_via: str = "pushpin",
    settle: float = 120.0,
) -> dict[str, Any]:
    """``clickers`` concurrent clients send ``clicks`` score-adds (spread over the
    players, as fast as accepted) while ``subscribers`` streams watch the board.
    ``post_via``: the clicks go through Pushpin, or straight to the app.

    Checks: the final total equals the accepted clicks (no increment lost), every
    subscriber ends on the final standings, and no subscriber ever sees a
    player's score go down.
    """
    board = create_board(
        settings.database_url, f"bench-{uuid.uuid4().hex[:8]}", [f"P{i}" for i in range(players)]
    )
    with (
        target_running("app", settings, f"leaderboard-{clickers}") as target,
        workers_running(worker_count(subscribers) + 1) as workers,
    ):
        poster, clients = workers[0], workers[1:]
        ids = [p["id"] for p in json.loads(_get(target.port, f"/boards/{board}/"))["players"]]
        connected = subscribe(clients, target.port, [f"/boards/{board}/"] * subscribers)
        usage = Usage({**target.components(), "clients": [w.pid for w in workers]})
        usage.start()
        requests = [
            (0.0, f"/boards/{board}/players/{ids[i % len(ids)]}/score-add/", b"", {})
            for i in range(clicks)
        ]
        results = post(
            poster,
            _post_port(target, post_via),
            requests,
            concurrency=clickers,
            key="json-id-score",
        )
        final_text = _get(target.port, f"/boards/{board}/").decode()
        collected = wait_and_collect(clients, "update", 0, settle, data_equals=final_text)
        processes = usage.stop()
    accepted = [r for r in results if 200 <= r[3] < 300]
    sent = {tuple(k): at for k, at, _done, status in accepted}
    final = json.loads(final_text)["players"]
    latencies: list[float] = []
    updates, went_down, at_final = [], 0, 0
    repeated_ids = older_ids = went_down_on_page = 0
    for sub in collected:
        best: dict[int, int] = {}
        count = 0
        last = None
        seen_ids: set[int] = set()
        newest = -1
        shown: dict[int, int] = {}  # what the page shows: it skips ids not newer than its last
        for name, event_id, data, at in sub["events"]:
            if name != "update":
                continue
            count += 1
            last = data
            # Event ids ("board-<id>:<n>") tell a repeat or an older event from a new one.
            number = int(str(event_id).rpartition(":")[2]) if event_id else -1
            if number in seen_ids:
                repeated_ids += 1
            elif number < newest:
                older_ids += 1
            if number > newest:
                for player in json.loads(data)["players"]:
                    if player["score"] < shown.get(player["id"], 0):
                        went_down_on_page += 1
                    shown[player["id"]] = player["score"]
            seen_ids.add(number)
            newest = max(newest, number)
            for player in json.loads(data)["players"]:
                previous = best.get(player["id"])
                if previous is not None and player["score"] < previous:
                    went_down += 1
                    continue
                start = 0 if previous is None else previous
                for score in range(start + 1, player["score"] + 1):
                    if (player["id"], score) in sent:
                        latencies.append(at - sent[(player["id"], score)])
                best[player["id"]] = player["score"]
        updates.append(count)
        at_final += last == final_text
    updates.sort()
    return {
        "scenario": "leaderboard",
        "target": "app",
        "post_via": post_via,
        "clickers": clickers,
        "subscribers": subscribers,
        "players": players,
        "connected": connected,
        "publish": post_summary(results),
        "expected_score": len(accepted),
        "final_score": sum(p["score"] for p in final),
        "subscribers_with_final_score": at_final,
        "score_went_down": went_down,
        "score_went_down_on_page": went_down_on_page,
        "update_ids_repeated": repeated_ids,
        "update_ids_older_than_seen": older_ids,
        "updates_per_subscriber": (
            f"{updates[0]}/{updates[len(updates) // 2]}/{updates[-1]}" if updates else "-"
        ),
        "latency_ms": percentiles(latencies),
        "deliveries": {
            "subscribers": len(collected),
            "expected": len(accepted) * len(collected),
            "received": len(latencies),
            "lost": len(accepted) * len(collected) - len(latencies),
            "duplicates": repeated_ids,
            "stream_resets": sum(
                1 for sub in collected for e in sub["events"] if e[0] == "stream-reset"
            ),
        },
        "processes": processes,
    }

"""A proxy whose publish API takes connections but never answers: what it costs the rest.

    python -m bench.stuck_proxy [--proxies 2] [--stopped 30] [--out FILE]

Starts the stack as `PROXIES=N make run` does (N Pushpins behind HAProxy, two app
processes, the publisher and a standby) on free ports and its own database, opens a
subscriber on each Pushpin, then stops the last Pushpin's handler (SIGSTOP) for
``--stopped`` seconds while it posts a message every 0.5 s. It reports, for the time the
handler is stopped: how long each post took, how long each health probe took, how
late each message reached the subscriber on a Pushpin that still answers, and how long
the publisher's publish calls took (from its log); then how long the stopped
Pushpin's subscriber took to get everything once resumed. ``--proxies 1`` is the one
proxy case: there, delivery waits for the proxy by design.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.__main__ import DEFAULT_DATABASE_URL
from bench.stacks import app_environment, prepare_database
from devstack.sse import Subscriber
from devstack.stack import Stack


def _ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def run(*, proxies: int, stopped: float, database_url: str, workdir: Path) -> dict[str, Any]:
    prepare_database(database_url)
    env = app_environment(database_url, grip_url="")
    env.pop("GRIP_URL")
    stack = Stack(workdir, env, apps=2, proxies=proxies, standby=True)
    stack.start()
    room = f"stuck-{int(time.time())}"
    path = f"/rooms/{room}/events/"
    subs = [Subscriber(p.url + path, reconnect=True) for p in stack.pushpins]
    posted_at: dict[int, float] = {}
    posts: list[float] = []
    probes: dict[str, list[float]] = {"/healthz/live": [], "/healthz/ready": [], "/healthz": []}
    try:
        for sub in subs:
            sub.wait_open()
        frozen = stack.pushpins[-1].handler_pid()
        os.kill(frozen, signal.SIGSTOP)
        started = time.monotonic()
        n = 0
        with httpx.Client(timeout=30) as client:
            while time.monotonic() - started < stopped:
                app = stack.apps[n % 2]
                before = time.monotonic()
                response = client.post(
                    f"{app.url}/rooms/{room}/messages/", data={"from": "bench", "text": str(n)}
                )
                posts.append(time.monotonic() - before)
                assert response.status_code == 200, response.text
                posted_at[response.json()["id"]] = before
                for probe, seconds in probes.items():
                    before = time.monotonic()
                    client.get(stack.app.url + probe)
                    seconds.append(time.monotonic() - before)
                n += 1
                time.sleep(0.5)
        live = subs[0] if proxies > 1 else None
        late: list[float] = []
        if live is not None:
            events = live.wait_count("message", n, timeout=30)
            late = [e.received - posted_at[e.json()["id"]] for e in events]
        resumed = time.monotonic()
        os.kill(frozen, signal.SIGCONT)
        subs[-1].wait_count("message", n, timeout=120)
        caught_up = time.monotonic() - resumed
        for sub in subs:
            ids = [json.loads(e.data)["id"] for e in sub.of_type("message")]
            assert ids == sorted(posted_at), "lost, repeated or out of order"
        publish_ms = [
            float(m.group(1))
            for m in re.finditer(r"publish channel=\S+ ids=\S+ count=\d+ ms=([\d.]+)", _log(stack))
        ]
    finally:
        for sub in subs:
            sub.close()
        stack.stop()
    return {
        "proxies": proxies,
        "stopped_s": stopped,
        "messages": n,
        "post": _ms(posts),
        "probes": {probe: _ms(seconds) for probe, seconds in probes.items()},
        "delivery_through_the_other_proxy_while_stopped": _ms(late) if late else None,
        "publisher_publish_call": {
            "count": len(publish_ms),
            "p50_ms": statistics.median(publish_ms) if publish_ms else None,
            "max_ms": max(publish_ms, default=None),
        },
        "stopped_proxys_subscriber_caught_up_s": round(caught_up, 2),
        "lost_repeated_or_out_of_order": 0,
    }


def _log(stack: Stack) -> str:
    assert stack.publisher is not None and stack.standby is not None
    return stack.publisher.process_log() + stack.standby.process_log()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stuck_proxy", description=__doc__)
    parser.add_argument("--proxies", type=int, default=2)
    parser.add_argument("--stopped", type=float, default=30)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-stuck-") as tmp:
        result = run(
            proxies=args.proxies,
            stopped=args.stopped,
            database_url=args.database_url,
            workdir=Path(tmp),
        )
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Health probes that answer within a bound, whatever hangs behind them.

- ``GET /healthz/live``: the process answers. For a container's liveness check.
- ``GET /healthz/ready``: the process and its database answer. For the load
  balancer: it depends on no proxy and no outside API, so an outage of one
  proxy, or of Fastly's API, never takes every origin out of rotation.
- ``GET /healthz``: the full report, for people and for monitoring: the
  database, the publisher (its heartbeat, and each proxy as it sees them) and
  the lag. Web processes never call a proxy themselves: the publisher, which
  publishes, reports what it sees in its heartbeat (realtime.publisher).

Each check runs in a worker thread and is given ``CHECK_SECONDS``: one that
does not finish in time is reported as timed out, so a probe answers within
about that long even when the database hangs.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as CheckTimeout
from typing import Any

from django.db import DatabaseError, connection, connections

from realtime import grip, publisher

CHECK_SECONDS = 2.0
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")


def bounded(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``check()``, or ``{"ok": false, "error": "timed out"}`` after ``CHECK_SECONDS``."""

    def run() -> dict[str, Any]:
        try:
            return check()
        finally:
            # A worker thread's connection would otherwise stay checked out for good.
            connections.close_all()

    try:
        return _checks.submit(run).result(timeout=CHECK_SECONDS)
    except CheckTimeout:
        return {"ok": False, "error": f"no answer within {CHECK_SECONDS:.0f} s"}


def database() -> dict[str, Any]:
    """Whether the default database answers a query (the first error line if not)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        return {"ok": False, "vendor": connection.vendor, "error": str(error).splitlines()[0]}
    return {"ok": True, "vendor": connection.vendor}


def publishing() -> dict[str, Any]:
    """The publisher and the proxies, as the publisher's heartbeat tells."""
    try:
        report = publisher.status()
    except DatabaseError as error:
        return {"ok": False, "error": str(error).splitlines()[0]}
    report["mode"] = "grip" if grip.configured() else "direct"
    if not all(proxy["up"] for proxy in report["proxies"]):
        report["ok"] = False
    return report

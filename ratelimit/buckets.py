"""The counter: one token bucket per (limit, client) row, shared by every app process.

A request takes one token from its client's bucket, which holds at most
``rate.burst`` tokens and refills at ``rate.per_second``. Taking is one
``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` statement: the database locks
the row, refills it for the time since its last update, and takes a token only
if a whole one is there, so concurrent requests from any number of processes
never take more tokens than the bucket holds. A refused request takes nothing
(and writes nothing). PostgreSQL and SQLite both run it.

Time is the app's clock (:data:`clock`, or ``now`` given by the caller), so tests
can move it; a clock that runs behind the row's (another host's) never refills
it backwards.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from django.db import connection

from ratelimit.models import Bucket
from ratelimit.rates import Rate

# Every this many takes, a process also deletes up to _PURGE_LIMIT full buckets.
_PURGE_EVERY = 100
_PURGE_LIMIT = 1000
_takes = itertools.count(1)
# Seconds since the epoch; tests replace it to move time.
clock: Callable[[], float] = time.time


def take(*, scope: str, client: str, rate: Rate, now: float | None = None) -> float:
    """Take one token from ``client``'s bucket of ``scope``: 0.0 when taken, otherwise
    how many seconds (more than 0) until the bucket holds a token again."""
    now = clock() if now is None else now
    table = connection.ops.quote_name(Bucket._meta.db_table)
    least, greatest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")
    refilled = f"{least}(%s, b.tokens + %s * {greatest}(0, EXCLUDED.updated - b.updated))"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS b (scope, client, tokens, updated) "  # noqa: S608
            "VALUES (%s, %s, %s, %s) ON CONFLICT (scope, client) DO UPDATE "
            f"SET tokens = {refilled} - 1, updated = {greatest}(b.updated, EXCLUDED.updated) "
            f"WHERE {refilled} >= 1 RETURNING tokens",
            [scope, client, rate.burst - 1, now, *[rate.burst, rate.per_second] * 2],
        )
        taken = cursor.fetchone() is not None
    if next(_takes) % _PURGE_EVERY == 0:
        purge_full(scope=scope, rate=rate, now=now)
    if taken:
        return 0.0
    return _wait(scope=scope, client=client, rate=rate, now=now)


def _wait(*, scope: str, client: str, rate: Rate, now: float) -> float:
    """Seconds until the bucket holds a whole token, as it stands now."""
    row = Bucket.objects.filter(scope=scope, client=client).values("tokens", "updated").first()
    if row is None:  # purged meanwhile: full again
        return 1e-3
    tokens = min(rate.burst, row["tokens"] + rate.per_second * max(0.0, now - row["updated"]))
    return max((1 - tokens) / rate.per_second, 1e-3)


def purge_full(*, scope: str, rate: Rate, now: float | None = None) -> int:
    """Delete up to ``_PURGE_LIMIT`` buckets of ``scope`` that have refilled to full (the
    same as no row); how many went."""
    now = clock() if now is None else now
    # A bucket untouched for the time it takes to fill from empty is full.
    full = Bucket.objects.filter(scope=scope, updated__lt=now - rate.burst / rate.per_second)
    # The condition again in the DELETE: a bucket charged in between stays.
    deleted, _ = full.filter(pk__in=list(full.values_list("pk", flat=True)[:_PURGE_LIMIT])).delete()
    return deleted

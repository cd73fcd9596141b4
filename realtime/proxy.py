"""Delivery to the GRIP proxies: every event to every configured proxy, none waiting on another.

:class:`ProxySet` publishes each batch to every proxy in ``GRIP_PROXIES`` at once,
each call bounded by ``REALTIME_PUBLISH_TIMEOUT_MS``:

- A batch counts as published when every proxy that is up took it. A proxy that
  fails or does not answer in time is marked down, and the others go on: it
  costs them one timeout, once.
- A proxy that is down gets nothing until an empty publish, tried in the
  background at most once per ``REALTIME_HEARTBEAT_SECONDS`` (so that probing
  it holds up nothing), answers again. Then it is sent the
  latest event of every channel written to since it went down: its streams that
  hold an older ``prev-id`` see the gap and recover the missed events from the
  log through their ``Grip-Link`` (docs/EVENT_DELIVERY.md), in order. A proxy
  never gets a gap it cannot see.
- When no proxy is up, the batch fails (:class:`PublishError`) and the
  publisher tries it again from its first event.

Each proxy's state (up or down, its last error, how far behind it is) goes
into the publisher's heartbeat (:mod:`realtime.publisher`), which ``/healthz``
reports, and into the log.

The other way Pushpin offers, one ZMQ PUB socket that every instance subscribes
to (``push_in_sub_specs``), is documented in docs/SCALING.md, with why we
publish over HTTP to each instance instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Max

from realtime import log
from realtime.eventstream import grip_channel, proxy_sse
from realtime.grip import PublishClient, PublishError, stream_item
from realtime.models import Event

logger = logging.getLogger("realtime.proxy")

__all__ = ["NoProxy", "ProxySet", "PublishError", "transport"]

# Pushpin refuses a publish request over push_in_max_body_size (1,000,000 bytes by
# default). An item's content is ASCII (log.data_text escapes the rest), so its JSON takes
# at most twice its length, plus the item's other fields.
_REQUEST_BYTES = 900_000
_ITEM_OVERHEAD = 512
# Where a run of events is cut into items (one event always fits: a message's data is
# at most about 35,000 characters).
_ITEM_CHARS = 64_000


def items_of(events: Sequence[Event]) -> list[dict[str, Any]]:
    """The publish items of ``events``: one item per run of consecutive events of a
    channel, as SSE with each event's id written in, the item's ``prev-id`` the id
    before the run's first.

    One item for many events: Pushpin queues at most 100 items per stream
    while the client's buffer is full, and drops the rest (the stream then
    recovers from the log); a batch of 500 events as 500 items overflowed it at
    once (docs/BENCHMARKS.md, the flood).
    """
    items: list[dict[str, Any]] = []
    run: list[tuple[Event, str]] = []
    size = 0
    for event in [*events, None]:
        text = (
            ""
            if event is None
            else proxy_sse(event.channel.name, event.seq, event.type, log.data_text(event.data))
        )
        last = run[-1][0] if run else None
        if last is not None and (
            event is None
            or event.channel_id != last.channel_id
            or event.seq != last.seq + 1
            or size + len(text) > _ITEM_CHARS
        ):
            first = run[0][0]
            items.append(
                stream_item(
                    grip_channel(first.channel.name),
                    "".join(t for _e, t in run),
                    id=str(last.seq),
                    prev_id=str(first.seq - 1),
                )
            )
            run, size = [], 0
        if event is not None:
            run.append((event, text))
            size += len(text)
    return items


def requests_of(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``items`` packed, in order, into publish requests that Pushpin takes."""
    requests: list[list[dict[str, Any]]] = []
    size = _REQUEST_BYTES
    for item in items:
        cost = 2 * len(item["formats"]["http-stream"]["content"]) + _ITEM_OVERHEAD
        if size + cost > _REQUEST_BYTES:
            requests.append([])
            size = 0
        requests[-1].append(item)
        size += cost
    return requests


@dataclass(eq=False)  # one per proxy, kept in dicts by identity
class ProxyState:
    """What the publisher knows of one proxy."""

    client: PublishClient
    up: bool = True
    last_ok: float | None = None  # time.time() of its last publish or probe that worked
    last_error: str | None = None  # kept once it is back, with its age, for who looks later
    last_error_at: float | None = None  # time.time()
    down_since: float | None = None  # time.time()
    # Events (Event.pk) after this one were not all handed to it: those it gets when back.
    missed_after: int = 0
    next_probe: float = 0.0  # time.monotonic()
    probe: Future[None] | None = None  # the empty publish in flight, while it is down

    def report(self, now: float) -> dict[str, Any]:
        """Its state for the heartbeat: ``lag_seconds`` is how long it has missed events."""
        return {
            "target": self.client.target,
            "up": self.up,
            "lag_seconds": 0.0 if self.down_since is None else round(now - self.down_since, 3),
            "last_ok_seconds_ago": None if self.last_ok is None else round(now - self.last_ok, 3),
            "last_error": self.last_error,
            "last_error_seconds_ago": (
                None if self.last_error_at is None else round(now - self.last_error_at, 3)
            ),
        }

    def failed(self, error: str) -> None:
        self.last_error, self.last_error_at = error, time.time()


class ProxySet:
    """Publishes to every configured proxy; see the module."""

    def __init__(self, entries: Sequence[dict[str, Any]] | None = None) -> None:
        timeout = settings.REALTIME_PUBLISH_TIMEOUT_MS / 1000
        self.proxies = [
            ProxyState(PublishClient(entry, timeout=timeout))
            for entry in (settings.GRIP_PROXIES if entries is None else entries)
        ]
        self.retry_seconds: float = settings.REALTIME_HEARTBEAT_SECONDS
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, len(self.proxies)), thread_name_prefix="publish"
        )
        self._probes = ThreadPoolExecutor(
            max_workers=max(1, len(self.proxies)), thread_name_prefix="probe"
        )

    def publish(self, events: Sequence[Event]) -> None:
        """Hand ``events`` (in this order) to every proxy that is up; raise
        :class:`PublishError` when none took them."""
        self.revive()
        up = [p for p in self.proxies if p.up]
        if not up:
            raise PublishError("no proxy is up: " + "; ".join(self._errors()))
        items = items_of(events)
        failed = self._each(up, lambda p: self._send(p, items))
        for proxy, error in failed.items():
            self._down(proxy, error, missed_after=min(e.pk for e in events) - 1)
        if len(failed) == len(up):
            raise PublishError("; ".join(failed.values()))

    def revive(self) -> None:
        """Bring back the proxies whose probe answered; start the probes that are due.

        Probes run in the background: a proxy that hangs holds up nothing.
        """
        now = time.monotonic()
        for proxy in self.proxies:
            if proxy.up:
                continue
            if proxy.probe is not None and proxy.probe.done():
                error = proxy.probe.exception()
                proxy.probe = None
                if error is None:
                    self._up(proxy)
                    continue
                proxy.failed(str(error) or type(error).__name__)
                proxy.next_probe = now + self.retry_seconds
            if proxy.probe is None and proxy.next_probe <= now:
                proxy.probe = self._probes.submit(proxy.client.probe)

    def report(self) -> list[dict[str, Any]]:
        """Each proxy's state, once those that are down and due were probed."""
        self.revive()
        now = time.time()
        return [p.report(now) for p in self.proxies]

    def close(self) -> None:
        for pool in (self._pool, self._probes):
            pool.shutdown(wait=False, cancel_futures=True)
        for proxy in self.proxies:
            proxy.client.close()

    # --- each proxy -------------------------------------------------------------------

    def _each(self, proxies: list[ProxyState], call: Any) -> dict[ProxyState, str]:
        """Run ``call(proxy)`` for each proxy at once; the errors of those that failed.

        Every call is bounded by the client's timeout; the wait is bounded too, in
        case a call is stuck where the timeout does not reach.
        """
        futures = {self._pool.submit(call, p): p for p in proxies}
        limit = 3 * settings.REALTIME_PUBLISH_TIMEOUT_MS / 1000 + 1
        done, stuck = wait(futures, timeout=limit)
        failed: dict[ProxyState, str] = {}
        for future in done:
            error = future.exception()
            if error is not None:
                failed[futures[future]] = str(error) or type(error).__name__
        for future in stuck:
            proxy = futures[future]
            proxy.client.close()
            failed[proxy] = f"{proxy.client.target}: no answer within {limit:.0f} s"
        return failed

    @staticmethod
    def _send(proxy: ProxyState, items: list[dict[str, Any]]) -> None:
        for request in requests_of(items):
            proxy.client.publish(request)
        proxy.last_ok = time.time()

    def _down(self, proxy: ProxyState, error: str, *, missed_after: int) -> None:
        logger.warning("proxy down target=%s error=%s", proxy.client.target, error)
        proxy.up = False
        proxy.failed(error)
        proxy.down_since = time.time()
        proxy.missed_after = missed_after
        proxy.next_probe = time.monotonic() + self.retry_seconds

    def _up(self, proxy: ProxyState) -> None:
        """Back: send it each channel's latest event since it went down, so that its
        streams see any gap and recover it from the log."""
        latest = list(
            Event.objects.filter(
                pk__in=Event.objects.filter(pk__gt=proxy.missed_after)
                .values("channel")
                .annotate(last=Max("pk"))
                .values("last")
            )
            .select_related("channel")
            .order_by("pk")
        )
        try:
            self._send(proxy, items_of(latest))
        except PublishError as error:
            proxy.failed(str(error))
            proxy.next_probe = time.monotonic() + self.retry_seconds
            return
        logger.info(
            "proxy up target=%s down_seconds=%.1f channels_to_recover=%d",
            proxy.client.target,
            time.time() - (proxy.down_since or time.time()),
            len(latest),
        )
        proxy.up = True
        proxy.down_since = None
        proxy.last_ok = time.time()

    def _errors(self) -> list[str]:
        return [p.last_error or f"{p.client.target}: down" for p in self.proxies]


class NoProxy:
    """Direct mode (no ``GRIP_PROXIES``): nothing to publish to; streams read the log."""

    def publish(self, events: Sequence[Event]) -> None:
        return None

    def report(self) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        return None


def transport() -> ProxySet | NoProxy:
    return ProxySet() if settings.GRIP_PROXIES else NoProxy()

"""Ephemeral events: delivered live to a channel's streams, never stored, never replayed.

Someone typing is worth showing now and worthless a few seconds later, so an
ephemeral event takes none of the stored events' road. How one travels:

1. A web process (:func:`send`) puts it whole into a ``NOTIFY``
   (:func:`realtime.notify.notify_ephemeral`): no row, no channel lock, no id.
2. The publisher publishes it at once to every proxy that is up
   (:meth:`realtime.proxy.ProxySet.publish_ephemeral`), as an item with no ``id``
   and no ``prev-id`` on the channel's ephemeral GRIP channel
   (:func:`realtime.channels.ephemeral_grip_channel`), best effort: on a
   connection and a thread of its own, never retried, never waited for. A proxy
   that misses it, or a stream that is recovering, simply never gets it.
3. The proxy delivers it to the streams subscribed to that channel (a stream
   opts in, :func:`realtime.stream.stream` with ``ephemeral=True``) as SSE
   without an ``id:`` line, so a client's ``Last-Event-ID`` stays on the last
   stored event, and a resume or a recovery, which read the log, never carry one.

Without a proxy (direct mode) or on SQLite they are not delivered: direct
streams read only the log, and SQLite has no ``NOTIFY``.

:class:`Throttle` is how a sender bounds them: at most one per key (a room and
a nickname) per interval, counted in this process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from base.errors import RateLimited
from realtime import log, notify
from realtime.channels import EphemeralType


class Throttle:
    """At most one event per key per ``every`` seconds, in this process (thread-safe).

    Its memory is bounded by the keys seen within the last ``every`` seconds:
    older ones are forgotten as new ones come.
    """

    def __init__(self, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._last: OrderedDict[str, float] = OrderedDict()  # key -> when, oldest first
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 when ``key`` may send now (and this counts as its send), otherwise the
        seconds (more than 0) until it may."""
        now = self.clock()
        with self._lock:
            while self._last:
                oldest, at = next(iter(self._last.items()))
                if now - at < self.every:
                    break
                del self._last[oldest]
            last = self._last.get(key)
            if last is not None:
                return max(self.every - (now - last), 1e-3)
            self._last[key] = now
            return 0.0

    def clear(self) -> None:
        with self._lock:
            self._last.clear()


def send(
    channel: str,
    event_type: EphemeralType,
    payload: dict[str, object],
    *,
    throttle: Throttle,
    key: str,
) -> None:
    """Hand an ephemeral event for ``channel``'s streams to the publisher, unless
    ``key`` sent one within ``throttle``'s interval: then raise
    :class:`base.errors.RateLimited` (field ``rate``), and send nothing.

    Costs one ``NOTIFY``, sent at once (outside any transaction), and writes no row.
    """
    wait = throttle.take(key)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise RateLimited(
            "rate", f"too many {event_type} events; try again in {seconds} s", retry_after=seconds
        )
    notify.notify_ephemeral(channel, event_type, log.data_text(payload))

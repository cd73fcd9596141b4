"""HAProxy (Debian's package) as the one entry point in front of several Pushpin instances.

`PROXIES=N make run`, the scale-out tests and the bench start it with
:class:`HAProxy`; docker compose's ``scale`` profile runs the same
configuration in the official image (``deploy/haproxy/haproxy.cfg``, rendered
by ``python -m devstack.deployconf``). What the configuration says, and why:

- ``balance leastconn``: an SSE stream lives for minutes or hours, so the
  instance with the fewest open streams gets the next one (round robin would
  pile reconnect storms onto whichever came next).
- ``timeout client``/``server``/``tunnel`` of an hour: a held stream is quiet
  between events and keep-alives (Pushpin sends one every 20 s); the short
  ``timeout connect`` and the health checks find a dead instance quickly.
- ``option httpchk GET /healthz/live`` through each Pushpin, every second: an
  instance whose proxy or handler stops answering leaves the rotation after two
  failed checks, and its clients reconnect to another one with their
  ``Last-Event-ID``. ``on-marked-down shutdown-sessions`` closes the streams it
  held, so that they reconnect at once instead of waiting on a dead peer.
- ``retries 3`` with ``option redispatch 1``: a request whose connection an
  instance refuses (it died and the checks have not noticed yet) is sent to
  another one instead of being answered 502, which a browser's EventSource
  takes as final. Only failed connections are retried (``retry-on
  conn-failure``, the default): a request that reached an instance is never
  sent twice.
- ``option http-no-delay``: an event is a few hundred bytes, sent as soon as it
  comes. Without it HAProxy asks the kernel to hold small writes for more
  (``MSG_MORE``), and every delivery waited up to 200 ms: the fan-out p50 through
  two Pushpins behind HAProxy was 233 ms against 39 ms through one Pushpin alone.
- ``option http-server-close`` is not set: Pushpin keeps connections alive.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devstack.processes import Process, StackError, http_ok, port_open, wait_until

CHECK_PATH = "/healthz/live"


def render_haproxy_config(
    *, port: int, backends: Sequence[tuple[str, int]], bind: str = "127.0.0.1"
) -> str:
    """The configuration: ``bind:port`` in front of ``backends`` (host, port), each checked."""
    servers = "\n".join(
        f"    server pushpin{n} {host}:{backend_port} check"
        for n, (host, backend_port) in enumerate(backends, start=1)
    )
    return f"""\
# Rendered by devstack/haproxy.py: HAProxy in front of the Pushpin instances.
global
    # Each connection takes two descriptors (client and server); 20,000 is the limit here.
    maxconn 9000

defaults
    mode http
    log stdout format raw local0 info
    option httplog
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout check 2s
    option http-no-delay

frontend entry
    bind {bind}:{port}
    default_backend pushpins

backend pushpins
    balance leastconn
    retries 3
    option redispatch 1
    retry-on conn-failure
    option httpchk GET {CHECK_PATH}
    http-check expect status 200
    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
{servers}
"""


@dataclass
class HAProxy:
    """HAProxy on ``port`` in front of the given Pushpin ports."""

    workdir: Path
    port: int
    backends: Sequence[int]
    processes: list[Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> HAProxy:
        if shutil.which("haproxy") is None:
            raise StackError(
                "HAProxy is not installed. On Debian/Ubuntu: sudo apt-get install -y haproxy"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "haproxy.cfg"
        config.write_text(
            render_haproxy_config(
                port=self.port, backends=[("127.0.0.1", port) for port in self.backends]
            )
        )
        if port_open(self.port):
            raise StackError(f"port {self.port} is already in use; is another balancer running?")
        self.processes = [
            Process(
                "haproxy",
                ["haproxy", "-db", "-f", str(config)],
                log_path=self.workdir / "haproxy.log",
            ).start()
        ]
        try:
            wait_until(
                lambda: self._alive() and http_ok(f"{self.url}{CHECK_PATH}", ok_below=300),
                timeout=timeout,
                what=f"HAProxy on :{self.port} to reach a Pushpin",
            )
        except StackError:
            tail = self.processes[0].log_tail()
            self.stop()
            raise StackError(f"HAProxy did not start\n{tail}") from None
        return self

    def _alive(self) -> bool:
        if not self.processes[0].alive():
            raise StackError(f"haproxy exited early:\n{self.processes[0].log_tail()}")
        return True

    def stop(self) -> None:
        for process in self.processes:
            process.stop()
        self.processes = []

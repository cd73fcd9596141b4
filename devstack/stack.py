"""The one stack builder: Pushpin in front of the app, and the publisher (or several
Pushpins behind HAProxy, several apps, and a standby publisher).

`make run` (devstack.run), the tests (tests/conftest.py) and the benchmarks
(bench/stacks.py) all start their stack with :class:`Stack`, so that each runs
the repo's own ``pushpin.conf`` and the app as production runs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from devstack.haproxy import HAProxy
from devstack.processes import free_port
from devstack.pushpin import Overrides, Pushpin, PushpinPorts
from devstack.servers import AppServer, PublisherServer
from devstack.sse import Subscriber

# An SSE endpoint: answering it takes Pushpin's proxy and handler both.
READY_PATH = "/rooms/stack-ready/events/"


class Stack:
    """Pushpin (unless ``proxy`` is false) in front of the app servers, and the publisher.

    Every process gets ``env``, with ``GRIP_URL`` set to this stack's Pushpins (or
    empty without one) unless ``grip_url`` is given, then ``app_env`` on top.
    Ports not given are free ones; logs go to ``workdir``: ``app.log`` (or
    ``app-<port>.log`` for each of several apps), ``publisher.log`` and
    ``pushpin/log/``. ``origins`` adds upstreams to Pushpin's routes beside the apps;
    with ``apps=0, publisher=False`` Pushpin fronts only them.

    ``proxies=N`` (N > 1) runs N Pushpins, each routing to every app, behind
    HAProxy on ``balancer_port`` (``pushpin-<n>/``, ``haproxy/``); the publisher
    publishes to each. ``standby=True`` adds a second publisher that waits for
    the first one's lock (``publisher-standby.log``).
    """

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str],
        *,
        apps: int | Sequence[int] = 1,
        proxy: bool = True,
        publisher: bool = True,
        pushpin_ports: PushpinPorts | Sequence[PushpinPorts] | None = None,
        overrides: Overrides | None = None,
        origins: Sequence[int] = (),
        ready_path: str | None = READY_PATH,
        grip_url: str | None = None,
        app_env: Mapping[str, str] | None = None,
        proxies: int = 1,
        balancer_port: int | None = None,
        standby: bool = False,
    ) -> None:
        self.workdir = workdir
        app_ports = [free_port() for _ in range(apps)] if isinstance(apps, int) else list(apps)
        given = (
            [pushpin_ports] if isinstance(pushpin_ports, PushpinPorts) else [*(pushpin_ports or [])]
        )
        self.pushpins = [
            Pushpin(
                workdir=workdir / ("pushpin" if proxies == 1 else f"pushpin-{n}"),
                origins=[*app_ports, *origins],
                ports=given[n - 1] if n <= len(given) else PushpinPorts.free(),
                overrides=overrides,
                ready_path=ready_path,
            )
            for n in range(1, (proxies if proxy else 0) + 1)
        ]
        self.balancer: HAProxy | None = None
        if len(self.pushpins) > 1:
            self.balancer = HAProxy(
                workdir=workdir / "haproxy",
                port=balancer_port or free_port(),
                backends=[p.ports.http for p in self.pushpins],
            )
        if grip_url is None:
            grip_url = " ".join(p.grip_url() for p in self.pushpins)
        self.env = {**env, "GRIP_URL": grip_url, **(app_env or {})}
        self.apps = [
            AppServer(
                port=port,
                env=self.env,
                log_path=workdir / ("app.log" if len(app_ports) == 1 else f"app-{port}.log"),
            )
            for port in app_ports
        ]
        self.publisher: PublisherServer | None = (
            PublisherServer(env=self.env, log_path=workdir / "publisher.log") if publisher else None
        )
        self.standby: PublisherServer | None = (
            PublisherServer(env=self.env, log_path=workdir / "publisher-standby.log")
            if publisher and standby
            else None
        )

    @property
    def pushpin(self) -> Pushpin | None:
        """The (first) Pushpin, or ``None`` without a proxy."""
        return self.pushpins[0] if self.pushpins else None

    @property
    def app(self) -> AppServer:
        return self.apps[0]

    @property
    def url(self) -> str:
        """Where clients connect: the balancer, Pushpin, or the first app without one."""
        if self.balancer is not None:
            return self.balancer.url
        return self.pushpin.url if self.pushpin is not None else self.app.url

    def start(self) -> Self:
        """Start the apps, the publisher, then Pushpin (its readiness check goes through
        the app); if one fails to start, stop what did and raise."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            for app in self.apps:
                app.start()
            if self.publisher is not None:
                self.publisher.start()
            if self.standby is not None:
                self.standby.start(wait_standby=True)
            for pushpin in self.pushpins:
                pushpin.start()
            if self.balancer is not None:
                self.balancer.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.balancer is not None:
            self.balancer.stop()
        for pushpin in self.pushpins:
            pushpin.stop()
        for publisher in (self.standby, self.publisher):
            if publisher is not None:
                publisher.stop()
        for app in self.apps:
            app.stop()

    def subscribe(
        self, path: str, headers: dict[str, str] | None = None, *, reconnect: bool = False
    ) -> Subscriber:
        return Subscriber(self.url + path, headers, reconnect=reconnect)

    def logs(self) -> str:
        """The end of every log, for a failing test's message."""
        parts = [
            f"--- {a.log_path}\n{a.log_path.read_text()[-4000:]}"
            for a in self.apps
            if a.log_path and a.log_path.exists()
        ]
        for publisher in (self.publisher, self.standby):
            if publisher is not None:
                parts.append(f"--- {publisher.log_path}\n{publisher.process_log()[-4000:]}")
        for pushpin in self.pushpins:
            parts.append(f"--- {pushpin.workdir} handler\n{pushpin.log()[-4000:]}")
            parts.append(f"--- {pushpin.workdir} proxy\n{pushpin.log('pushpin-proxy')[-4000:]}")
        return "\n".join(parts)

"""The app (``chatdemo.serve``) and the publisher (``manage.py realtime_publish``) as
child processes, each ready once it answers."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devstack import ROOT
from devstack.processes import Process, StackError, http_ok, port_open, wait_until


def start_ready(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path | None,
    ready: Callable[[], bool],
    timeout: float,
    what: str,
) -> Process:
    """Start ``argv`` in the repo and wait until ``ready()``; if the process exits or the
    time runs out first, stop it and raise with the end of its log."""
    process = Process(name, argv, env=env, cwd=ROOT, log_path=log_path).start()

    def alive_and_ready() -> bool:
        if not process.alive():
            raise StackError(f"the {name} exited early:\n{process.log_tail()}")
        return ready()

    try:
        wait_until(alive_and_ready, timeout=timeout, what=what)
    except StackError:
        tail = process.log_tail()
        process.stop()
        raise StackError(f"the {name} did not start\n{tail}") from None
    return process


@dataclass
class AppServer:
    """The Django app as production runs it: ``python -m chatdemo.serve`` (granian; WSGI
    when ``GRIP_URL`` is set, ASGI without a proxy)."""

    port: int
    env: Mapping[str, str]
    log_path: Path | None = None
    # Answered below 500 once the app is up; /healthz for settings that redirect "/" to HTTPS.
    ready_path: str = "/"
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> AppServer:
        if port_open(self.port):
            raise StackError(f"port {self.port} is already in use; is another app server running?")
        self.process = start_ready(
            "app",
            [sys.executable, "-m", "chatdemo.serve", "--port", str(self.port)],
            env=self.env,
            log_path=self.log_path,
            ready=lambda: http_ok(f"{self.url}{self.ready_path}"),
            timeout=timeout,
            what=f"the app on :{self.port}",
        )
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None


@dataclass
class PublisherServer:
    """The publisher process (``manage.py realtime_publish``); see realtime.publisher.

    Ready once it says it is the active publisher, that is, once it holds the
    database's publisher lock and listens for new events.
    """

    env: Mapping[str, str]
    log_path: Path
    process: Process | None = None

    ACTIVE = "publisher active"
    STANDBY = "publisher standby"

    def start(
        self, timeout: float = 30, *, wait_active: bool = True, wait_standby: bool = False
    ) -> PublisherServer:
        """Start it; wait until it is the active publisher (``wait_standby``: a standby),
        unless ``wait_active`` is false."""
        said = self.STANDBY if wait_standby else self.ACTIVE
        before = self._count(said)
        self.process = start_ready(
            "publisher",
            [sys.executable, "manage.py", "realtime_publish"],
            env=self.env,
            log_path=self.log_path,
            ready=lambda: not wait_active or self._count(said) > before,
            timeout=timeout,
            what=f"the publisher to say {said!r}",
        )
        return self

    def _count(self, said: str) -> int:
        return self.process_log().count(said)

    def process_log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None

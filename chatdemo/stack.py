"""Start and stop the local stack: zurl + Pushpin in front of the app (granian), and
the publisher process.

One piece of code serves `make run`, the test fixtures and the benchmarks, so
that all three run the repo's own ``pushpin.conf``. Only runtime paths and, on
request, ports are rewritten; every tuning value comes from the file.

This module does not import Django: it manages processes.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUSHPIN_CONF = ROOT / "pushpin.conf"

INSTALL_HINT = {
    "pushpin": "Pushpin is not installed. On Debian/Ubuntu: sudo apt-get install -y pushpin",
    "zurl": "zurl (installed with Pushpin) is missing. On Debian/Ubuntu: sudo apt-get install -y pushpin",
    "condure": "condure (installed with Pushpin) is missing. On Debian/Ubuntu: sudo apt-get install -y pushpin",
}


class StackError(RuntimeError):
    """A component of the stack is missing or did not start."""


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StackError(INSTALL_HINT.get(name, f"{name} is not on PATH"))
    return path


# Below Linux's ephemeral range (32768-60999), so that no outgoing connection
# (to PostgreSQL, to Pushpin) is given one of these ports between the moment it
# is chosen and the moment its server binds it.
_PORT_RANGE = (20000, 32000)
_ports_handed_out: set[int] = set()
_ports_lock = threading.Lock()
_ports_random = random.Random()  # noqa: S311 - picks ports, not secrets


def free_port() -> int:
    """A free TCP port on 127.0.0.1, never the same one twice in this process."""
    return free_port_block(1)


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive free ports, none handed out before in this process.

    Binding to port 0 and closing at once, as this used to, could give two
    components of one stack the same port (say, Pushpin's publish API and the
    app): the stack then started, and every publish went to the app.
    """
    with _ports_lock:
        for _ in range(1000):
            first = _ports_random.randrange(_PORT_RANGE[0], _PORT_RANGE[1] - size)
            block = range(first, first + size)
            if any(port in _ports_handed_out for port in block):
                continue
            if all(_bindable(port) for port in block):
                _ports_handed_out.update(block)
                return first
    raise StackError(f"no {size} free consecutive ports in {_PORT_RANGE[0]}-{_PORT_RANGE[1]}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Process:
    """A child process in its own process group, so that stopping it stops its children."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    log_path: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> Process:
        log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        try:
            self.popen = subprocess.Popen(
                list(self.argv),
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                stdout=log if log is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if log is not None:
                log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class PushpinPorts:
    http: int = 7999
    publish: int = 5561  # HTTP publish API
    push_in: int = 5560  # ZMQ PULL publish input
    push_in_sub: int = 5562  # ZMQ SUB publish input
    command: int = 5563

    @classmethod
    def free(cls) -> PushpinPorts:
        return cls(free_port(), free_port(), free_port(), free_port(), free_port())


def read_config(path: Path) -> configparser.ConfigParser:
    conf = configparser.ConfigParser(interpolation=None, strict=False)
    conf.optionxform = str  # type: ignore[assignment,method-assign]
    conf.read(path)
    return conf


def render_pushpin_config(
    workdir: Path,
    *,
    ports: PushpinPorts,
    origins: Sequence[int],
    source: Path = PUSHPIN_CONF,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
    routes: str | None = None,
) -> tuple[Path, Path]:
    """Write pushpin.conf, routes and zurl.conf for one instance under ``workdir``.

    Returns (pushpin.conf, zurl.conf). Everything but paths, ports and the
    explicit ``overrides`` is taken from ``source``. ``routes`` replaces the
    default routes file (every request to the ``origins``, first one first).
    """
    run = workdir / "run"
    logs = workdir / "log"
    run.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)

    conf = read_config(source)
    local = "tcp://127.0.0.1"
    values = {
        "global": {"rundir": str(run)},
        "runner": {"http_port": str(ports.http), "logdir": str(logs)},
        "proxy": {
            "routesfile": str(workdir / "routes"),
            "zurl_out_specs": f"ipc://{run}/zurl-in",
            "zurl_out_stream_specs": f"ipc://{run}/zurl-in-stream",
            "zurl_in_specs": f"ipc://{run}/zurl-out",
        },
        "handler": {
            "push_in_spec": f"{local}:{ports.push_in}",
            "push_in_sub_specs": f"{local}:{ports.push_in_sub}",
            "push_in_http_port": str(ports.publish),
            "command_spec": f"{local}:{ports.command}",
        },
    }
    for section, items in (overrides or {}).items():
        values.setdefault(section, {}).update(items)
    for section, items in values.items():
        if not conf.has_section(section):
            conf.add_section(section)
        for key, value in items.items():
            conf.set(section, key, value)

    pushpin_conf = workdir / "pushpin.conf"
    with pushpin_conf.open("w") as fh:
        conf.write(fh)
    targets = ",".join(f"127.0.0.1:{port}" for port in origins)
    (workdir / "routes").write_text(routes if routes is not None else f"* {targets}\n")

    zurl_conf = workdir / "zurl.conf"
    zurl_conf.write_text(
        "[General]\n"
        f"in_spec=ipc://{run}/zurl-in\n"
        f"in_stream_spec=ipc://{run}/zurl-in-stream\n"
        f"out_spec=ipc://{run}/zurl-out\n"
        f"in_req_spec=ipc://{run}/zurl-req\n"
        # zurl's packaged default denies 127.*, which is where the app is.
        "defpolicy=allow\nallow=\ndeny=\n"
        "max_open_requests=10000\nbuffer_size=200000\ntimeout=600\n"
    )
    return pushpin_conf, zurl_conf


@dataclass
class Pushpin:
    """A Pushpin instance with its own zurl, rundir and ports."""

    workdir: Path
    origins: Sequence[int]
    ports: PushpinPorts = field(default_factory=PushpinPorts)
    overrides: Mapping[str, Mapping[str, str]] | None = None
    routes: str | None = None  # the routes file's text; None: every request to ``origins``
    # A path whose request must make a full round trip through Pushpin (and, for
    # a GRIP hold, its handler) before start() returns; None skips the check.
    ready_path: str | None = "/"
    processes: list[Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    @property
    def publish_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.publish}"

    def grip_url(self) -> str:
        """GRIP_URL for the app: this instance's publish API, and the key it signs Grip-Sig with."""
        conf = read_config(PUSHPIN_CONF)
        return f"{self.publish_url}/?iss={conf.get('proxy', 'sig_iss')}&key={conf.get('proxy', 'sig_key')}"

    def log(self, name: str = "pushpin-handler") -> str:
        path = self.workdir / "log" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 20) -> Pushpin:
        for name in ("pushpin", "zurl", "condure"):
            require_binary(name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        pushpin_conf, zurl_conf = render_pushpin_config(
            self.workdir,
            ports=self.ports,
            origins=self.origins,
            overrides=self.overrides,
            routes=self.routes,
        )
        for port in (self.ports.http, self.ports.publish):
            if port_open(port):
                raise StackError(f"port {port} is already in use; is another Pushpin running?")
        self.processes = [
            Process(
                "zurl", ["zurl", f"--config={zurl_conf}"], log_path=self.workdir / "zurl.out"
            ).start(),
            Process(
                "pushpin",
                ["pushpin", "--config", str(pushpin_conf)],
                log_path=self.workdir / "pushpin.out",
            ).start(),
        ]
        try:
            wait_until(
                lambda: self._check_alive()
                and port_open(self.ports.http)
                and self._publish_api_answers(),
                timeout=timeout,
                what=f"Pushpin on :{self.ports.http} and its publish API on :{self.ports.publish}",
            )
            if self.ready_path is not None:
                # Ports open before the proxy and handler can route; wait for one round trip.
                wait_until(
                    lambda: self._check_alive()
                    and http_ok(f"{self.url}{self.ready_path}", ok_below=300),
                    timeout=timeout,
                    what=f"a request through Pushpin on :{self.ports.http} to reach the app",
                )
        except StackError:
            tails = "\n".join(f"--- {p.name}\n{p.log_tail()}" for p in self.processes)
            self.stop()
            raise StackError(f"Pushpin did not start\n{tails}") from None
        return self

    def _publish_api_answers(self) -> bool:
        """Whether Pushpin itself (not whatever else listens there) takes an empty publish."""
        request = urllib.request.Request(  # noqa: S310 - local URL
            f"{self.publish_url}/publish/",
            data=b'{"items": []}',
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                return response.status == 200 and response.read().startswith(b"Published")
        except OSError:
            return False

    def _check_alive(self) -> bool:
        for process in self.processes:
            if not process.alive():
                raise StackError(f"{process.name} exited early:\n{process.log_tail()}")
        return True

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes = []

    def restart(self, timeout: float = 20) -> None:
        self.stop()
        wait_until(
            lambda: not port_open(self.ports.http), timeout=10, what="Pushpin to release its port"
        )
        self.start(timeout)


def http_ok(url: str, ok_below: int = 500) -> bool:
    """Whether ``url`` answers with a status below ``ok_below`` (headers only; the body is not read)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
            return bool(200 <= response.status < ok_below)
    except urllib.error.HTTPError as error:
        return error.code < ok_below
    except OSError:
        return False


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
        argv = [sys.executable, "-m", "chatdemo.serve", "--port", str(self.port)]
        self.process = Process("app", argv, env=self.env, cwd=ROOT, log_path=self.log_path).start()
        process = self.process

        def ready() -> bool:
            if not process.alive():
                raise StackError(f"the app exited early:\n{process.log_tail()}")
            return http_ok(f"{self.url}{self.ready_path}")

        try:
            wait_until(ready, timeout=timeout, what=f"the app on :{self.port}")
        except StackError:
            tail = process.log_tail()
            self.stop()
            raise StackError(f"the app did not start\n{tail}") from None
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

    def start(self, timeout: float = 30, *, wait_active: bool = True) -> PublisherServer:
        """Start it; unless ``wait_active`` is false, wait until it is the active publisher."""
        before = self._active_count()
        argv = [sys.executable, "manage.py", "realtime_publish"]
        self.process = Process(
            "publisher", argv, env=self.env, cwd=ROOT, log_path=self.log_path
        ).start()
        process = self.process
        if not wait_active:
            return self

        def ready() -> bool:
            if not process.alive():
                raise StackError(f"the publisher exited early:\n{process.log_tail()}")
            return self._active_count() > before

        try:
            wait_until(ready, timeout=timeout, what="the publisher to become active")
        except StackError:
            tail = process.log_tail()
            self.stop()
            raise StackError(f"the publisher did not start\n{tail}") from None
        return self

    def _active_count(self) -> int:
        return self.process_log().count(self.ACTIVE)

    def process_log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None


@contextlib.contextmanager
def running(*components: Pushpin | AppServer | PublisherServer) -> Iterator[None]:
    try:
        for component in components:
            component.start()
        yield
    finally:
        for component in reversed(components):
            component.stop()

"""Pushpin (with its own zurl) from the repo's ``pushpin.conf``.

Only runtime paths and, on request, ports are rewritten; every tuning value
comes from the file, so `make run`, the tests and the benchmarks all run it.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devstack import ROOT
from devstack.processes import (
    Process,
    StackError,
    free_port,
    http_ok,
    port_open,
    wait_until,
)

PUSHPIN_CONF = ROOT / "pushpin.conf"

# pushpin.conf values by section, set on top of the file (``--pushpin-set`` in bench/).
Overrides = Mapping[str, Mapping[str, str]]


INSTALL_HINT = {
    "pushpin": "Pushpin is not installed. On Debian/Ubuntu: sudo apt-get install -y pushpin",
    "zurl": "zurl (installed with Pushpin) is missing. On Debian/Ubuntu: sudo apt-get install -y pushpin",
    "condure": "condure (installed with Pushpin) is missing. On Debian/Ubuntu: sudo apt-get install -y pushpin",
}


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StackError(INSTALL_HINT.get(name, f"{name} is not on PATH"))
    return path


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
    overrides: Overrides | None = None,
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
    overrides: Overrides | None = None
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

    def handler_pid(self) -> int:
        """The pid of this instance's handler (the process that runs the publish API),
        which the runner starts in a process group of its own."""
        found = subprocess.run(
            ["pgrep", "-f", f"pushpin-handler --config={self.workdir / 'pushpin.conf'}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if len(found) != 1:
            raise StackError(f"expected one pushpin-handler for {self.workdir}, found {found}")
        return int(found[0])

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
                body: bytes = response.read()
                return response.status == 200 and body.startswith(b"Published")
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

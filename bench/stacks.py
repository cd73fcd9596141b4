"""What a scenario runs against: the app behind Pushpin, the app alone, or bare Pushpin.

All three are a :class:`devstack.stack.Stack` (the builder `make run` and the
tests use): the repo's ``pushpin.conf`` with only paths and ports rewritten, plus
any ``--pushpin-set`` overrides given on the command line, which the results record.
The app runs as in production: ``DJANGO_DEBUG`` off, under ``chatdemo.serve``, against
its own PostgreSQL database so that a benchmark never touches the tests' or
``make run``'s data.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack import ROOT
from devstack.database import ensure_database
from devstack.processes import Process, free_port, port_open, wait_until
from devstack.pushpin import Overrides
from devstack.stack import Stack

BENCH_SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789abcdef"  # noqa: S105


def manage(*args: str, env: Mapping[str, str]) -> str:
    """``manage.py <args>`` under ``env``; its standard output."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=dict(env),
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def create_board(database_url: str, name: str, players: Sequence[str]) -> int:
    """A new board through the leaderboard's own service (its management command)."""
    env = app_environment(database_url, grip_url="")
    out = manage("leaderboard_board", "create", name, *players, env=env)
    match = re.search(r"created board (\d+)", out)
    if match is None:
        raise RuntimeError(f"could not create a board: {out!r}")
    return int(match.group(1))


def prepare_database(url: str) -> None:
    """Create the benchmark database if needed, migrate it and collect static files."""
    ensure_database(url)
    env = app_environment(url, grip_url="")
    manage("migrate", "--no-input", "-v", "0", env=env)
    # DEBUG is off, so pages need the collected, hashed static files (as in production).
    manage("collectstatic", "--no-input", "-v", "0", env=env)


def app_environment(
    database_url: str, *, grip_url: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatdemo.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": BENCH_SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Plain HTTP on loopback: production's TLS terminates in front of Pushpin.
        "DJANGO_HTTPS": "0",
        "DATABASE_URL": database_url,
        "GRIP_URL": grip_url,
        # The load comes from one address at rates no person reaches: what is measured
        # is the app and the proxy, not the limits (one database write per POST when on).
        "RATE_LIMIT_POSTS": "off",
        "RATE_LIMIT_CLICKS": "off",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra or {})
    return env


class Target(Stack):
    """A running system under test: where subscribers connect and what to post to."""

    origin: Process | None = None

    @property
    def port(self) -> int:
        """Where clients connect."""
        if self.balancer is not None:
            return self.balancer.port
        if self.pushpin is not None:
            return self.pushpin.ports.http
        return self.apps[0].port

    @property
    def publish_port(self) -> int:
        assert self.pushpin is not None
        return self.pushpin.ports.publish

    def components(self) -> dict[str, list[int]]:
        """Root process ids by component name, for CPU and memory accounting."""
        found: dict[str, list[int]] = {}
        for pushpin in self.pushpins:  # several Pushpins: each service summed over them
            for process in pushpin.processes:
                found.setdefault(process.name, []).append(process.pid)
        if self.balancer is not None:
            found["haproxy"] = [p.pid for p in self.balancer.processes]
        if self.apps:
            found["app"] = [a.process.pid for a in self.apps if a.process is not None]
        if self.publisher is not None and self.publisher.process is not None:
            found["publisher"] = [self.publisher.process.pid]
        if self.origin is not None:
            found["origin"] = [self.origin.pid]
        return found

    def request_log(self) -> list[str]:
        """The app's own line per request (chatdemo.requestlog), from every app process."""
        return [
            line
            for app in self.apps
            if app.log_path is not None and app.log_path.exists()
            for line in app.log_path.read_text(errors="replace").splitlines()
            if "logger=chatdemo.request " in line
        ]

    def stop(self) -> None:
        super().stop()
        if self.origin is not None:
            self.origin.stop()


def start_app(
    workdir: Path,
    *,
    database_url: str,
    proxy: bool = True,
    app_processes: int = 1,
    overrides: Overrides | None = None,
    app_env: Mapping[str, str] | None = None,
    proxies: int = 1,
) -> Target:
    """The app (chatdemo.serve), behind Pushpin unless ``proxy`` is false (``proxies`` > 1:
    that many Pushpins behind HAProxy, the publisher publishing to each)."""
    target = Target(
        workdir,
        app_environment(database_url, grip_url=""),
        apps=app_processes,
        proxy=proxy,
        proxies=proxies,
        overrides=overrides,
        ready_path="/rooms/bench-ready/events/",
        app_env=app_env,
    )
    return target.start()


def start_bare(workdir: Path, *, overrides: Overrides | None = None) -> Target:
    """Bare Pushpin: the same pushpin.conf in front of bench.origin's GRIP holds."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    target = Target(
        workdir,
        {},
        apps=0,
        publisher=False,
        origins=[port],
        overrides=overrides,
        ready_path="/bare/ready/",
    )
    target.origin = Process(
        "origin",
        [sys.executable, "-m", "bench.origin", "--port", str(port)],
        cwd=ROOT,
        log_path=workdir / "origin.log",
    ).start()
    try:
        wait_until(lambda: port_open(port), timeout=10, what=f"the bare origin on :{port}")
        target.start()
    except BaseException:
        target.stop()
        raise
    return target


# --- process accounting (Linux /proc) --------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(command name, parent pid, CPU ticks used) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return name, int(fields[1]), int(fields[11]) + int(fields[12])


def _peak_rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


def process_tree(roots: list[int]) -> dict[int, str]:
    """Every live process under ``roots`` (inclusive), with its command name."""
    parents: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = (stat[0], stat[1])
    found = {pid: parents[pid][0] for pid in roots if pid in parents}
    grew = True
    while grew:
        grew = False
        for pid, (name, ppid) in parents.items():
            if ppid in found and pid not in found:
                found[pid] = name
                grew = True
    return found


class Usage:
    """CPU seconds between :meth:`start` and :meth:`stop`, and peak RSS, per process.

    Pushpin's runner is split into its services (condure, pushpin-proxy,
    pushpin-handler) because each is its own process and bottleneck.
    """

    def __init__(self, components: Mapping[str, list[int]]) -> None:
        self.components = components
        self.before: dict[int, int] = {}
        self.labels: dict[int, str] = {}

    def _snapshot(self) -> dict[int, int]:
        ticks = {}
        for component, roots in self.components.items():
            for pid, name in process_tree(roots).items():
                stat = _stat(pid)
                if stat is None:
                    continue
                if component == "pushpin" and name != "pushpin":
                    self.labels[pid] = name
                elif component == "pushpin":
                    self.labels[pid] = "pushpin-runner"
                else:
                    self.labels[pid] = component
                ticks[pid] = stat[2]
        return ticks

    def start(self) -> None:
        self.before = self._snapshot()

    def stop(self) -> dict[str, dict[str, float]]:
        after = self._snapshot()
        out: dict[str, dict[str, float]] = {}
        for pid, ticks in after.items():
            label = self.labels[pid]
            entry = out.setdefault(label, {"cpu_s": 0.0, "peak_rss_mb": 0.0})
            entry["cpu_s"] += (ticks - self.before.get(pid, 0)) / _CLK_TCK
            entry["peak_rss_mb"] += _peak_rss_kb(pid) / 1024
        return {
            label: {k: round(v, 2) for k, v in values.items()}
            for label, values in sorted(out.items())
        }

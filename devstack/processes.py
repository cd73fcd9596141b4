"""Child processes, free ports and waiting with a hard timeout.

This module does not import Django: it manages processes.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class StackError(RuntimeError):
    """A component of the stack is missing or did not start."""


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


def wait_until(
    predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")


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

"""What a result was measured on: machine, versions, and the Pushpin config in force."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from devstack import ROOT
from devstack.pushpin import PUSHPIN_CONF, read_config


def _run(*argv: str) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _postgres_version(database_url: str) -> str:
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://")) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else ""


def describe(
    *, database_url: str, overrides: dict[str, dict[str, str]], size: str, app_processes: int
) -> dict[str, Any]:
    conf = read_config(PUSHPIN_CONF)
    handler = {key: conf.get("handler", key) for key in conf.options("handler")}
    for key, value in overrides.get("handler", {}).items():
        handler[key] = value
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "size": size,
        "git_commit": _run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "memory_gib": _memory_gib(),
            "kernel": platform.release(),
            "open_files_hard_limit": int(_run("sh", "-c", "ulimit -Hn") or 0),
        },
        "versions": {
            "pushpin": _run("pushpin", "--version"),
            "python": platform.python_version(),
            "django": version("django"),
            "granian": version("granian"),
            "django-eventstream": version("django-eventstream"),
            "psycopg": version("psycopg"),
            "postgresql": _postgres_version(database_url),
        },
        "pushpin_handler_config": {
            key: handler[key]
            for key in ("message_rate", "message_hwm", "message_wait", "id_cache_ttl")
            if key in handler
        },
        "pushpin_overrides": overrides,
        "app_processes": app_processes,
        "app_settings": {
            "DJANGO_DEBUG": "0",
            "server": "granian (WSGI behind the proxy, ASGI without)",
        },
    }

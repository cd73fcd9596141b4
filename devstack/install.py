"""Installing what the stack needs with apt-get, as root on Debian or Ubuntu, and saying so.

`make run` (devstack.run) and `make test` (devstack.testdeps) both install this way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def say(line: str) -> None:
    print(line, flush=True)


def can_apt_install(env: dict[str, str]) -> bool:
    """Root on Debian or Ubuntu, with apt-get on PATH, and not told otherwise."""
    if env.get("RUN_NO_INSTALL", "").strip() not in ("", "0"):
        return False
    if os.geteuid() != 0 or shutil.which("apt-get", path=env.get("PATH")) is None:
        return False
    try:
        release = Path("/etc/os-release").read_text()
    except OSError:
        return False
    ids = {
        value.strip().strip('"')
        for line in release.splitlines()
        if line.startswith(("ID=", "ID_LIKE="))
        for value in line.split("=", 1)[1].strip('"').split()
    }
    return bool(ids & {"debian", "ubuntu"})


def apt_install(*packages: str, env: dict[str, str]) -> bool:
    """``apt-get install -y <packages>`` (after one ``apt-get update`` if the first try fails)."""
    apt_env = {**env, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in range(2):
        if attempt:
            subprocess.run(["apt-get", "update", "-q"], env=apt_env, check=False)
        done = subprocess.run(
            ["apt-get", "install", "-y", "-q", *packages], env=apt_env, check=False
        )
        if done.returncode == 0:
            return True
    return False

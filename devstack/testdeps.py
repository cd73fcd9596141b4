"""Install what `make test` needs and is missing, then make sure PostgreSQL answers.

    .venv/bin/python -m devstack.testdeps

`make test` runs it first, and so does `.ci/run` through `make test`. The
integration tests need Pushpin (with zurl and condure) and HAProxy, the browser
tests Debian's Chromium, the edge app's test Node.js, and this script
PostgreSQL's client (``pg_isready``). As root on Debian or Ubuntu it installs whichever of them is missing with
apt-get, as `make run` does (devstack.run), and says so; otherwise it
prints the apt-get command and fails. Then, if PostgreSQL at ``DATABASE_URL``
(the tests' default: 127.0.0.1:5432) does not answer and a local cluster is
installed, it starts the cluster, as root. Nothing present is installed again,
so it takes a moment when nothing is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dj_database_url

from devstack.install import apt_install, can_apt_install, say
from devstack.processes import StackError, wait_until

# The programs the tests run, and the Debian package that has each.
PACKAGE_OF = {
    "pushpin": "pushpin",
    "zurl": "pushpin",
    "condure": "pushpin",
    "chromium": "chromium",
    "pg_isready": "postgresql-client",
    "node": "nodejs",  # tests/deploy/test_edge.py runs edge/'s routing rule
    "haproxy": "haproxy",  # tests/realtime/test_many_proxies.py: Pushpins behind HAProxy
}
TESTS_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chatdemo"  # as tests/settings.py


def missing_packages() -> list[str]:
    return sorted({pkg for program, pkg in PACKAGE_OF.items() if shutil.which(program) is None})


def install(env: dict[str, str]) -> bool:
    missing = missing_packages()
    if not missing:
        return True
    if not can_apt_install(env):
        say(
            f"make test: {', '.join(missing)} not installed. "
            f"Install with: sudo apt-get install -y {' '.join(missing)}"
        )
        return False
    say(f"make test: installing {', '.join(missing)} with apt-get")
    if not apt_install(*missing, env=env) or missing_packages():
        say(f"make test: apt-get could not install {', '.join(missing_packages())}")
        return False
    say(f"make test: installed {', '.join(missing)}")
    return True


def postgres_answers(host: str, port: int) -> bool:
    ready = ["pg_isready", "-q", "-h", host, "-p", str(port)]
    return subprocess.run(ready, check=False).returncode == 0


def start_postgres(env: dict[str, str]) -> bool:
    config = dj_database_url.parse(env.get("DATABASE_URL") or TESTS_DATABASE_URL)
    host, port = config.get("HOST") or "127.0.0.1", int(config.get("PORT") or 5432)
    if postgres_answers(host, port):
        return True
    clusters = sorted(Path("/etc/postgresql").glob("*/main"))
    if os.geteuid() != 0 or not clusters or host not in ("127.0.0.1", "localhost"):
        say(
            f"make test: PostgreSQL at {host}:{port} does not answer; start it "
            "(on Debian: sudo pg_ctlcluster <version> main start) or set DATABASE_URL"
        )
        return False
    version = clusters[-1].parent.name
    say(f"make test: starting PostgreSQL {version}")
    start = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]
    subprocess.run(start, check=False)
    try:
        wait_until(lambda: postgres_answers(host, port), timeout=30, what="PostgreSQL")
    except StackError as error:
        say(f"make test: {error}")
        return False
    return True


def main() -> int:
    env = dict(os.environ)
    return 0 if install(env) and start_postgres(env) else 1


if __name__ == "__main__":
    sys.exit(main())

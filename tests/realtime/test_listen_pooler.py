"""The publisher's and direct mode's listener behind a real PgBouncer.

``LISTEN`` and the publisher's advisory lock belong to a session: behind a
pooler in transaction mode the listener would hear nothing (and two publishers
could both hold "the" lock), so it must refuse to start, naming
``DATABASE_LISTEN_URL``; in session mode it works.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from devstack.processes import Process, free_port, port_open, wait_until
from realtime import notify

pytestmark = pytest.mark.integration


def _pgbouncer(mode: str) -> Iterator[str]:
    """PgBouncer in ``mode`` in front of this run's PostgreSQL; yields a URL of the test
    database through it."""
    binary = shutil.which("pgbouncer")
    if binary is None:
        pytest.fail("PgBouncer is missing; install it with: sudo apt-get install -y pgbouncer")
    db = django_settings.DATABASES["default"]
    port = free_port()
    # PgBouncer refuses to run as root: it runs as postgres, which must read and write here.
    workdir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    workdir.chmod(0o777)
    (workdir / "userlist.txt").write_text(f'"{db["USER"] or "postgres"}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"auth_type = trust\nauth_file = {workdir / 'userlist.txt'}\n"
        f"pool_mode = {mode}\ndefault_pool_size = 2\nunix_socket_dir =\n"
        f"logfile = {workdir / 'pgbouncer.log'}\n"
    )
    argv = [
        binary,
        *(["-u", "postgres"] if os.geteuid() == 0 else []),
        str(workdir / "pgbouncer.ini"),
    ]
    process = Process("pgbouncer", argv, log_path=workdir / "pgbouncer.out").start()
    try:
        wait_until(lambda: port_open(port), timeout=10, what=f"PgBouncer on :{port}")
        yield f"postgres://{db['USER'] or 'postgres'}@127.0.0.1:{port}/{db['NAME']}"
    finally:
        process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def transaction_pooler(transactional_db: None) -> Iterator[str]:
    yield from _pgbouncer("transaction")


@pytest.fixture
def session_pooler(transactional_db: None) -> Iterator[str]:
    yield from _pgbouncer("session")


def test_listener_behind_a_transaction_pooler_stops_naming_database_listen_url(
    transaction_pooler: str, settings: Any
) -> None:
    settings.DATABASE_LISTEN_URL = transaction_pooler
    with pytest.raises(ImproperlyConfigured, match="DATABASE_LISTEN_URL"), notify.listening():
        pass


def test_listener_behind_a_session_pooler_hears_commits(session_pooler: str, settings: Any) -> None:
    settings.DATABASE_LISTEN_URL = session_pooler
    with notify.listening() as listener:
        notify.notify("room-pooled")
        assert notify.wait(listener, 5) == notify.Commits(events={"room-pooled"})

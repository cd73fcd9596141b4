"""DATABASE_POOL_MAX_SIZE: a psycopg pool per app process, on by default, read from the environment.

Settings are read once at import, so each case runs in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from devstack import ROOT

SHOW_DATABASE = (
    "import django, json; django.setup(); from django.conf import settings; "
    "d = settings.DATABASES['default']; "
    "print(json.dumps({'pool': d['OPTIONS'].get('pool'), 'conn_max_age': d['CONN_MAX_AGE']}))"
)


def run_settings(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "-c", SHOW_DATABASE],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "chatdemo.settings",
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/chatdemo",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_database_pool_on_by_default() -> None:
    run = run_settings()
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "pool": {"min_size": 1, "max_size": 10, "timeout": 5},
        "conn_max_age": 0,
    }


def test_database_pool_size_and_timeout_from_env() -> None:
    run = run_settings(DATABASE_POOL_MAX_SIZE="8", DATABASE_POOL_TIMEOUT="2")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "pool": {"min_size": 1, "max_size": 8, "timeout": 2},
        "conn_max_age": 0,
    }


def test_database_pool_off_keeps_conn_max_age() -> None:
    run = run_settings(DATABASE_POOL_MAX_SIZE="0", DATABASE_CONN_MAX_AGE="60")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"pool": None, "conn_max_age": 60}


def test_database_pool_with_conn_max_age_stops_start_up_naming_both() -> None:
    run = run_settings(DATABASE_POOL_MAX_SIZE="8", DATABASE_CONN_MAX_AGE="60")
    assert run.returncode != 0
    assert "DATABASE_POOL_MAX_SIZE" in run.stderr
    assert "DATABASE_CONN_MAX_AGE" in run.stderr

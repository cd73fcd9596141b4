"""Database faults: the app answers 503 with Retry-After, never a 500, and the pool
queues a flood instead of failing it (chatdemo.errors, DATABASE_POOL_MAX_SIZE).

Each case runs the app as production does (chatdemo.serve) against a real
PostgreSQL that is unreachable, or that lets the app's role hold only one
connection.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from django.conf import settings as django_settings

from chat.models import Message
from devstack.processes import StackError, free_port
from devstack.servers import AppServer
from tests.conftest import postgres_url

pytestmark = pytest.mark.integration


def _app(tmp_path: Path, database_url: str, **env: str) -> AppServer:
    app = AppServer(
        port=free_port(),
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "chatdemo.settings",
            "DATABASE_URL": database_url,
            "GRIP_URL": "",
            "PYTHONUNBUFFERED": "1",
            **env,
        },
        log_path=tmp_path / "app.log",
    )
    try:
        return app.start()
    except StackError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def unreachable_app(tmp_path: Path) -> Iterator[AppServer]:
    """The app with nothing listening where its database should be."""
    app = _app(
        tmp_path,
        f"postgres://postgres@127.0.0.1:{free_port()}/chatdemo",
        DATABASE_POOL_TIMEOUT="1",
    )
    yield app
    app.stop()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/rooms/lobby/messages/"),
        ("POST", "/rooms/lobby/messages/"),
        ("GET", "/boards/1/"),
        ("POST", "/boards/1/players/1/score-add/"),
    ],
)
def test_api_with_the_database_unreachable_is_503_json_with_retry_after(
    unreachable_app: AppServer, method: str, path: str
) -> None:
    response = httpx.request(
        method, unreachable_app.url + path, data={"from": "Ann", "text": "hi"}, timeout=30
    )
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "2"
    assert response.json() == {
        "error": "the database is unavailable; retry shortly",
        "field": "database",
    }


def test_page_with_the_database_unreachable_is_a_503_page(unreachable_app: AppServer) -> None:
    response = httpx.get(unreachable_app.url + "/leaderboard/", timeout=30)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Unavailable for a moment" in response.text


@pytest.mark.parametrize("path", ["/healthz", "/healthz/ready"])
def test_healthz_names_the_database_as_down(unreachable_app: AppServer, path: str) -> None:
    started = time.monotonic()
    response = httpx.get(unreachable_app.url + path, timeout=30)
    assert time.monotonic() - started < 3  # a probe answers within its bound
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["database"]["ok"] is False
    assert body["database"]["error"]
    assert "publisher" not in body  # nothing more to ask without a database


def test_liveness_answers_without_the_database(unreachable_app: AppServer) -> None:
    response = httpx.get(unreachable_app.url + "/healthz/live", timeout=30)
    assert (response.status_code, response.json()) == (200, {"ok": True})


@pytest.fixture
def one_connection_role(transactional_db: None) -> Iterator[str]:
    """A database URL whose role PostgreSQL lets hold one connection at a time."""
    role = f"{django_settings.DATABASES['default']['NAME']}_one_connection"
    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 1')
        admin.execute(f'GRANT pg_read_all_data, pg_write_all_data TO "{role}"')
    yield postgres_url(user=role)
    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role]
        )
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def _flood(tmp_path: Path, database_url: str, *, pool_size: int) -> Counter[int]:
    """200 posts, 40 at a time, to an app with this pool; how many got each status."""
    app = _app(tmp_path, database_url, DATABASE_POOL_MAX_SIZE=str(pool_size))
    try:
        return _post_many(app.url + "/rooms/flood/messages/", 200)
    finally:
        app.stop()


def _post_many(url: str, count: int) -> Counter[int]:
    def post(n: int) -> tuple[int, Any]:
        response = httpx.post(url, data={"from": "Ann", "text": f"m{n}"}, timeout=60)
        if response.status_code >= 400:
            assert response.headers["Content-Type"] == "application/json"
        if response.status_code == 503:
            assert response.headers["Retry-After"] == "2"
        return response.status_code, response

    with ThreadPoolExecutor(max_workers=40) as pool:
        return Counter(status for status, _ in pool.map(post, range(count)))


def test_a_flood_queues_for_the_pool_and_is_all_stored(
    one_connection_role: str, tmp_path: Path
) -> None:
    """200 concurrent posters share one connection: they wait for it; none fails."""
    statuses = _flood(tmp_path, one_connection_role, pool_size=4)
    assert statuses == {200: 200}
    assert Message.objects.filter(room="flood").count() == 200


def test_without_the_pool_out_of_connections_is_503_never_500(
    one_connection_role: str, tmp_path: Path
) -> None:
    """With no pool, each of the 8 threads connects on its own; PostgreSQL refuses all but one."""
    statuses = _flood(tmp_path, one_connection_role, pool_size=0)
    assert set(statuses) <= {200, 503}
    assert statuses[503] > 0, "the flood never ran out of connections: the test proves nothing"
    assert Message.objects.filter(room="flood").count() == statuses[200]

"""chatdemo.serve: WSGI behind a GRIP proxy, ASGI without one."""

from __future__ import annotations

import httpx
import pytest

from chatdemo.serve import WSGI_THREADS, command
from tests.conftest import Stack


def test_behind_a_proxy_the_app_runs_as_wsgi() -> None:
    argv = command(host="0.0.0.0", port=8000, workers=2, proxied=True)  # noqa: S104
    assert argv[1:] == [
        "--interface",
        "wsgi",
        "--host",
        "0.0.0.0",  # noqa: S104
        "--port",
        "8000",
        "--workers",
        "2",
        "--no-ws",
        "--blocking-threads",
        str(WSGI_THREADS),
        "chatdemo.wsgi:application",
    ]
    assert argv[0].endswith("granian")


def test_without_a_proxy_the_app_streams_over_asgi() -> None:
    argv = command(host="127.0.0.1", port=8001, workers=1, proxied=False)
    assert argv[1:3] == ["--interface", "asgi"]
    assert argv[-1] == "chatdemo.asgi:application"


@pytest.mark.integration
@pytest.mark.parametrize("value", [b"\xff", b"not an address", b"1.2.3.4, \xfe"])
def test_a_bad_x_forwarded_for_never_reaches_a_500(live_db: Stack, value: bytes) -> None:
    """daphne's --proxy-headers turned these into a 500 before the app ran."""
    response = httpx.get(f"{live_db.app.url}/healthz/ready", headers={"X-Forwarded-For": value})
    assert response.status_code == 200
    assert response.json()["ok"] is True

"""chatdemo.serve: WSGI behind a GRIP proxy, ASGI without one."""

from __future__ import annotations

from chatdemo.serve import WSGI_THREADS, command


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

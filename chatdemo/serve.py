"""``python -m chatdemo.serve``: the app under granian, for `make run`, the tests, the
benchmarks, the Dockerfile and production alike.

Behind a GRIP proxy (``GRIP_URL`` set) the app holds no stream: every answer is
short, GRIP instructions included, so it runs as WSGI, which took about 1 ms of
CPU per chat post against 3.2 ms for granian's ASGI and 4.4 to 5.4 ms for
daphne (docs/BENCHMARKS.md). Without a proxy the app streams SSE itself, which
needs ASGI.

    python -m chatdemo.serve --host 0.0.0.0 --port 8000 [--workers N, or APP_WORKERS]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

# A WSGI worker's threads; each holds at most one database connection, so this
# is also the most connections per worker (keep DATABASE_POOL_MAX_SIZE at or above).
WSGI_THREADS = 8


def command(*, host: str, port: int, workers: int, proxied: bool) -> list[str]:
    """The granian command line for this configuration."""
    granian = shutil.which("granian", path=os.path.dirname(sys.executable)) or "granian"
    common = ["--host", host, "--port", str(port), "--workers", str(workers), "--no-ws"]
    if proxied:
        return [
            granian,
            "--interface",
            "wsgi",
            *common,
            "--blocking-threads",
            str(WSGI_THREADS),
            "chatdemo.wsgi:application",
        ]
    return [granian, "--interface", "asgi", *common, "chatdemo.asgi:application"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chatdemo.serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, help="worker processes (default: APP_WORKERS)")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdemo.settings")
    from django.conf import settings

    workers = args.workers or settings.APP_WORKERS
    proxied = bool(settings.GRIP_PROXIES)
    argv = command(host=args.host, port=args.port, workers=workers, proxied=proxied)
    os.execv(argv[0], argv)  # noqa: S606 - this process becomes the server


if __name__ == "__main__":
    main()

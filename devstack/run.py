"""`make run`: prepare a database, then run the app (behind Pushpin when there is one) until Ctrl-C.

    python -m devstack.run

What it runs depends on what the machine has, and it says so in one line each:

- **Database.** PostgreSQL at ``DATABASE_URL`` (default
  ``postgres://postgres@127.0.0.1:5432/chatdemo``); the database is created if
  missing. With ``DATABASE_URL`` unset, running as root on Debian/Ubuntu,
  a local PostgreSQL is installed with apt-get if missing, its cluster is
  started if stopped, and the app connects over the Unix socket as a
  superuser role named after the OS user. When none of that gives a
  PostgreSQL, the app uses SQLite in ``RUN_DIR``.
- **Proxy.** Pushpin (with zurl and condure) on ``PUSHPIN_PORT``, publish API
  on ``PUSHPIN_PUBLISH_PORT``; installed with apt-get when missing and running
  as root on Debian/Ubuntu. Without it, the app streams SSE itself: open the
  app's port.

Then it applies migrations and the demo data, starts the app (``chatdemo.serve``) on ``APP_PORT``,
prints the URL to open, and stops every process it started on Ctrl-C or
SIGTERM. Nothing already installed is installed again, so a second run starts
in seconds.

Variables (all optional): ``APP_PORT`` (8000), ``PUSHPIN_PORT`` (7999),
``PUSHPIN_PUBLISH_PORT`` (5561; Pushpin's ZMQ inputs take the ports next to
it, as in Pushpin's defaults: -1, +1, +2), ``RUN_DIR`` (``.run``),
``RUN_NO_INSTALL=1`` (never run apt-get), and the app's own settings.
``DJANGO_DEBUG`` is on unless set; ``DJANGO_DEBUG=0 make run`` runs the
production settings over plain HTTP on localhost (see
:func:`production_settings_locally`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from django.core.exceptions import ImproperlyConfigured

from base.env import env_bool
from devstack import ROOT
from devstack.database import choose_database
from devstack.install import apt_install, can_apt_install, say
from devstack.processes import StackError
from devstack.pushpin import PushpinPorts
from devstack.stack import Stack

PUSHPIN_BINARIES = ("pushpin", "zurl", "condure")


def env_port(env: dict[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise StackError(f"{name} must be a port number; got {value!r}")
    return int(value)


def dev_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_DEBUG", "1")
    env.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


# --- the proxy -----------------------------------------------------------------------


def pushpin_available(env: dict[str, str]) -> bool:
    """Whether Pushpin and its helpers are on PATH, installing them with apt-get if allowed."""

    def missing() -> list[str]:
        return [
            name for name in PUSHPIN_BINARIES if shutil.which(name, path=env.get("PATH")) is None
        ]

    if not missing():
        return True
    if can_apt_install(env):
        say("proxy: Pushpin is not installed; installing it with apt-get (once)")
        if apt_install("pushpin", env=env) and not missing():
            return True
    say(
        f"proxy: {', '.join(missing())} not found; the app streams SSE itself, "
        "with no GRIP proxy in front (install Pushpin with: sudo apt-get install -y pushpin)"
    )
    return False


@dataclass(frozen=True)
class Ports:
    app: int
    pushpin: PushpinPorts

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Ports:
        publish = env_port(env, "PUSHPIN_PUBLISH_PORT", 5561)
        return cls(
            app=env_port(env, "APP_PORT", 8000),
            pushpin=PushpinPorts(
                http=env_port(env, "PUSHPIN_PORT", 7999),
                publish=publish,
                push_in=publish - 1,
                push_in_sub=publish + 1,
                command=publish + 2,
            ),
        )


def production_settings_locally(env: dict[str, str], run_dir: Path) -> None:
    """``DJANGO_DEBUG=0 make run``: the production settings, on this machine.

    What production gets from its deployment, a local run makes up, and says
    so: plain HTTP on localhost (no redirect to HTTPS, no Secure cookies), a
    secret key kept in ``RUN_DIR``, and static files collected there.
    """
    env.setdefault("DJANGO_HTTPS", "0")
    env.setdefault("DJANGO_STATIC_ROOT", str(run_dir / "static"))
    if not env.get("DJANGO_SECRET_KEY", "").strip():
        key_file = run_dir / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(50))
            key_file.chmod(0o600)
        env["DJANGO_SECRET_KEY"] = key_file.read_text().strip()
        say(f"settings: DJANGO_DEBUG is off; using the secret key in {key_file}")


def migrate_and_seed(*, env: dict[str, str]) -> None:
    """``migrate``, ``seed_demo`` and, with DEBUG off, ``collectstatic``, in one process:
    Django starts once, not three times."""
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "from django.core.management import call_command; "
        "call_command('migrate', interactive=False, verbosity=0); call_command('seed_demo'); "
        "settings.DEBUG or call_command('collectstatic', interactive=False, verbosity=0)"
    )
    env = {**env, "DJANGO_SETTINGS_MODULE": env.get("DJANGO_SETTINGS_MODULE", "chatdemo.settings")}
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)


def main() -> int:
    env = dev_environment()
    try:
        ports = Ports.from_env(env)
        run_dir = Path(env.get("RUN_DIR", "").strip() or ROOT / ".run").resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        if not env_bool("DJANGO_DEBUG", environ=env):
            production_settings_locally(env, run_dir)
        env["DATABASE_URL"] = choose_database(env, run_dir)
        with_proxy = pushpin_available(env)
        # No proxy is up yet: the demo data's events are stored; the publisher
        # publishes them once it runs.
        setup_env = {**env, "GRIP_URL": ""}
        migrate_and_seed(env=setup_env)
    except (StackError, subprocess.CalledProcessError, ImproperlyConfigured) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    stack = Stack(
        run_dir,
        env,
        apps=[ports.app],
        proxy=with_proxy,
        pushpin_ports=ports.pushpin,
        ready_path="/rooms/default/events/",
        # An explicit GRIP_URL wins over the local Pushpin's.
        grip_url=env.get("GRIP_URL") if with_proxy else "",
    )
    if with_proxy:
        url = f"http://localhost:{ports.pushpin.http}/"
        how = f"through Pushpin; the app itself listens on :{ports.app}, Pushpin's logs are in {run_dir / 'pushpin' / 'log'}"
    else:
        url = f"http://localhost:{ports.app}/"
        how = "the app serves the streams itself over ASGI"

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # Also when started with SIGINT ignored (`cmd &` in a script): Ctrl-C must still stop.
    signal.signal(signal.SIGINT, stop)
    try:
        stack.start()
        assert stack.publisher is not None
        say(
            f"\n  Open {url}  (chat and leaderboard; {how})\n"
            f"  The app's log (one line per request): {stack.app.log_path}\n"
            f"  The publisher's log: {stack.publisher.log_path}\n"
            "  Press Ctrl-C to stop.\n"
        )
        processes = [
            stack.app.process,
            stack.publisher.process,
            *(stack.pushpin.processes if stack.pushpin else []),
        ]
        while all(p is not None and p.alive() for p in processes):
            time.sleep(0.5)
        print("a process exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        say("\nstopping…")
        return 0
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())

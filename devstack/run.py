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
  as root on Debian/Ubuntu. Without it, or with ``PROXIES=0``, the app streams
  SSE itself: open the app's port.
- **Several proxies.** ``PROXIES=N`` (N > 1) runs N Pushpins (HTTP on
  ``PUSHPIN_PORT - 10 + n``, publish API on ``PUSHPIN_PUBLISH_PORT + 10 (n - 1)``),
  N app processes (``APP_PORT + n - 1``), the publisher and a standby, and
  HAProxy (installed like Pushpin) on ``PUSHPIN_PORT`` as the one entry point.

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


def haproxy_available(env: dict[str, str]) -> bool:
    """Whether HAProxy is on PATH, installing it with apt-get if allowed."""
    if shutil.which("haproxy", path=env.get("PATH")) is not None:
        return True
    if can_apt_install(env):
        say("balancer: HAProxy is not installed; installing it with apt-get (once)")
        if apt_install("haproxy", env=env) and shutil.which("haproxy", path=env.get("PATH")):
            return True
    say("balancer: haproxy not found (install it with: sudo apt-get install -y haproxy)")
    return False


def env_proxies(env: dict[str, str]) -> int:
    value = env.get("PROXIES", "").strip() or "1"
    if not value.isdigit() or int(value) > 8:
        raise StackError(f"PROXIES must be a number of Pushpins from 0 to 8; got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Ports:
    apps: list[int]
    pushpins: list[PushpinPorts]  # the first one's HTTP port is the entry, unless a balancer
    entry: int

    @classmethod
    def from_env(cls, env: dict[str, str], proxies: int = 1) -> Ports:
        publish = env_port(env, "PUSHPIN_PUBLISH_PORT", 5561)
        entry = env_port(env, "PUSHPIN_PORT", 7999)
        app = env_port(env, "APP_PORT", 8000)
        count = max(proxies, 1)
        return cls(
            apps=[app + n for n in range(count)],
            pushpins=[
                PushpinPorts(
                    http=entry if count == 1 else entry - 10 + n,
                    publish=publish + 10 * (n - 1),
                    push_in=publish + 10 * (n - 1) - 1,
                    push_in_sub=publish + 10 * (n - 1) + 1,
                    command=publish + 10 * (n - 1) + 2,
                )
                for n in range(1, count + 1)
            ],
            entry=entry,
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
        proxies = env_proxies(env)
        ports = Ports.from_env(env, proxies)
        run_dir = Path(env.get("RUN_DIR", "").strip() or ROOT / ".run").resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        if not env_bool("DJANGO_DEBUG", environ=env):
            production_settings_locally(env, run_dir)
        env["DATABASE_URL"] = choose_database(env, run_dir)
        if proxies == 0:
            say("proxy: PROXIES=0; the app streams SSE itself, with no GRIP proxy in front")
            with_proxy = False
        else:
            with_proxy = pushpin_available(env)
        if with_proxy and proxies > 1 and not haproxy_available(env):
            raise StackError(f"PROXIES={proxies} needs HAProxy in front of the Pushpins")
        # No proxy is up yet: the demo data's events are stored; the publisher
        # publishes them once it runs.
        setup_env = {**env, "GRIP_URL": ""}
        migrate_and_seed(env=setup_env)
    except (StackError, subprocess.CalledProcessError, ImproperlyConfigured) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    scaled = with_proxy and proxies > 1
    stack = Stack(
        run_dir,
        env,
        apps=ports.apps if scaled else ports.apps[:1],
        proxy=with_proxy,
        proxies=proxies if scaled else 1,
        pushpin_ports=ports.pushpins,
        balancer_port=ports.entry,
        standby=scaled,
        ready_path="/rooms/default/events/",
        # An explicit GRIP_URL wins over the local Pushpins'.
        grip_url=env.get("GRIP_URL") if with_proxy else "",
    )
    if scaled:
        url = f"http://localhost:{ports.entry}/"
        how = "through HAProxy and Pushpin; the ports are below"
    elif with_proxy:
        url = f"http://localhost:{ports.entry}/"
        how = f"through Pushpin; the app itself listens on :{ports.apps[0]}, Pushpin's logs are in {run_dir / 'pushpin' / 'log'}"
    else:
        url = f"http://localhost:{ports.apps[0]}/"
        how = "the app serves the streams itself over ASGI"

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # Also when started with SIGINT ignored (`cmd &` in a script): Ctrl-C must still stop.
    signal.signal(signal.SIGINT, stop)
    try:
        stack.start()
        assert stack.publisher is not None
        say(f"\n  Open {url}  (chat and leaderboard; {how})")
        if scaled:
            assert stack.balancer is not None
            say(f"  HAProxy :{stack.balancer.port} (the entry point; {stack.balancer.workdir})")
            for pushpin in stack.pushpins:
                say(
                    f"  Pushpin :{pushpin.ports.http}, publish API :{pushpin.ports.publish} "
                    f"(logs: {pushpin.workdir / 'log'})"
                )
        for app in stack.apps:
            say(f"  App :{app.port} (one line per request: {app.log_path})")
        say(f"  The publisher's log: {stack.publisher.log_path}")
        if stack.standby is not None:
            say(f"  The standby publisher's log: {stack.standby.log_path}")
        say("  Press Ctrl-C to stop.\n")
        processes = [
            *(app.process for app in stack.apps),
            stack.publisher.process,
            *(stack.standby.process for _ in [0] if stack.standby is not None),
            *(p for pushpin in stack.pushpins for p in pushpin.processes),
            *(stack.balancer.processes if stack.balancer else []),
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

"""`make run`: prepare a database, then run the app (behind Pushpin when there is one) until Ctrl-C.

    python -m chatdemo.devserver

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

Then it applies migrations and the demo data, starts daphne on ``APP_PORT``,
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
import pwd
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

from chatdemo.env import env_bool
from chatdemo.stack import ROOT, AppServer, PublisherServer, Pushpin, PushpinPorts, StackError

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chatdemo"
PUSHPIN_BINARIES = ("pushpin", "zurl", "condure")
POSTGRES_SOCKET_DIR = Path("/var/run/postgresql")


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


def say(line: str) -> None:
    print(line, flush=True)


# --- installing with apt-get ---------------------------------------------------------


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


# --- the database --------------------------------------------------------------------


class DatabaseUnavailable(Exception):
    pass


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it does not exist."""
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(url)
    if "postgresql" not in config["ENGINE"]:
        return
    host, port = config.get("HOST") or "127.0.0.1", config.get("PORT") or 5432
    try:
        with psycopg.connect(
            host=host,
            port=port,
            user=config.get("USER") or None,
            password=config.get("PASSWORD") or None,
            dbname="postgres",
            connect_timeout=3,
            autocommit=True,
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (config["NAME"],)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
                say(f"created database {config['NAME']}")
    except psycopg.Error as error:
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        raise DatabaseUnavailable(f"PostgreSQL at {host}:{port} ({first_line})") from None


def _local_postgres_url(env: dict[str, str]) -> str | None:
    """As root on Debian/Ubuntu: install and start a local PostgreSQL, return a socket URL.

    The app then connects over the Unix socket with peer authentication, as a
    superuser role named after the OS user (created here), so no password is
    set or stored anywhere.
    """
    if not can_apt_install(env):
        return None
    if not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        say("database: PostgreSQL is not installed; installing it with apt-get (once)")
        if not apt_install("postgresql", env=env):
            return None
    clusters = sorted(Path("/etc/postgresql").glob("*/main"))
    if not clusters:
        return None
    version = clusters[-1].parent.name
    if not list(POSTGRES_SOCKET_DIR.glob(".s.PGSQL.*")):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False
        )
    user = pwd.getpwuid(os.geteuid()).pw_name  # peer authentication maps this name
    as_postgres = ["runuser", "-u", "postgres", "--"]
    role = subprocess.run(
        [*as_postgres, "psql", "-tA", "-v", f"name={user}"],
        # psql quotes :'name' itself; it interpolates variables only in its input.
        input="SELECT 1 FROM pg_roles WHERE rolname = :'name';",
        capture_output=True,
        text=True,
        check=False,
    )
    if role.returncode != 0:
        return None
    if role.stdout.strip() != "1":
        subprocess.run([*as_postgres, "createuser", "--superuser", user], check=False)
    return f"postgres://{user}@{str(POSTGRES_SOCKET_DIR).replace('/', '%2F')}/chatdemo"


def choose_database(env: dict[str, str], run_dir: Path) -> str:
    """The DATABASE_URL to run with: PostgreSQL if there is one, SQLite otherwise."""
    explicit = env.get("DATABASE_URL", "").strip()
    url = explicit or DEFAULT_DATABASE_URL
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        return url  # the developer chose another database
    try:
        ensure_database(url)
        return url
    except DatabaseUnavailable as error:
        reason = str(error)
    if not explicit:
        local = _local_postgres_url(env)
        if local is not None:
            try:
                ensure_database(local)
                return local
            except DatabaseUnavailable as error:
                reason = str(error)
    path = run_dir / "chatdemo.sqlite3"
    say(f"database: {reason} is not usable; using SQLite at {path} instead")
    return f"sqlite:///{path}"


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

    pushpin: Pushpin | None = None
    if with_proxy:
        pushpin = Pushpin(
            workdir=run_dir / "pushpin",
            origins=[ports.app],
            ports=ports.pushpin,
            ready_path="/rooms/default/events/",
        )
        env.setdefault("GRIP_URL", pushpin.grip_url())
        url = f"http://localhost:{ports.pushpin.http}/"
        how = f"through Pushpin; the app itself listens on :{ports.app}, Pushpin's logs are in {run_dir / 'pushpin' / 'log'}"
    else:
        env["GRIP_URL"] = ""
        url = f"http://localhost:{ports.app}/"
        how = "the app serves the streams itself over ASGI"
    app = AppServer(port=ports.app, env=env, log_path=run_dir / "app.log")
    publisher = PublisherServer(env=env, log_path=run_dir / "publisher.log")

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # Also when started with SIGINT ignored (`cmd &` in a script): Ctrl-C must still stop.
    signal.signal(signal.SIGINT, stop)
    try:
        app.start()
        publisher.start()
        if pushpin is not None:
            pushpin.start()
        say(
            f"\n  Open {url}  (chat and leaderboard; {how})\n"
            f"  The app's log (one line per request): {app.log_path}\n"
            f"  The publisher's log: {publisher.log_path}\n"
            "  Press Ctrl-C to stop.\n"
        )
        processes = [app.process, publisher.process, *(pushpin.processes if pushpin else [])]
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
        if pushpin is not None:
            pushpin.stop()
        publisher.stop()
        app.stop()


if __name__ == "__main__":
    sys.exit(main())

"""The PostgreSQL database `make run` and the benchmarks run against: created when
missing, and for `make run` a local cluster installed and started when there is none."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from devstack.install import apt_install, can_apt_install, say

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chatdemo"
POSTGRES_SOCKET_DIR = Path("/var/run/postgresql")


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

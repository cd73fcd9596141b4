"""docker-compose.yml, the Dockerfile and deploy/pushpin/, checked without a Docker engine.

There is no Docker engine here, so the containers never run in this suite.
What is checked: the compose file parses and has the services, ports,
networks, healthchecks and start order docs/DOCKER.md documents; the image
installs its dependencies from the hashed lock alone; the app's environment
points at the right hosts with the right keys; the Pushpin
configuration it mounts is what ``devstack.deployconf`` renders from the
repo's ``pushpin.conf``; and that configuration, run by the local Pushpin
with its runner starting zurl as the container does, carries a chat message
and a recovered publish end to end.
"""

from __future__ import annotations

import re
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from django.db import transaction

from chat.services import message_post
from devstack import ROOT, deployconf
from devstack.processes import Process, http_ok, port_open, wait_until
from devstack.pushpin import PUSHPIN_CONF, PushpinPorts, read_config
from devstack.stack import READY_PATH
from tests.conftest import Stack, Subscribers, post_unpublished, publishing_to

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DEPLOY_CONF = read_config(deployconf.DEPLOY_DIR / "pushpin.conf")


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with nothing set in the environment."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def _env(service: str) -> dict[str, str]:
    return {
        key: _interpolate(str(value)) for key, value in SERVICES[service]["environment"].items()
    }


def test_compose_services() -> None:
    assert sorted(SERVICES) == [
        "app",
        "balancer",
        "db",
        "migrate",
        "publisher",
        "pushpin",
        "pushpin-2",
    ]
    assert {name: svc.get("profiles") for name, svc in SERVICES.items() if "profiles" in svc} == {
        "pushpin-2": ["scale"],
        "balancer": ["scale"],
    }
    assert SERVICES["pushpin"]["image"] == "fanout/pushpin:1.36.0"  # the version tested here
    assert SERVICES["db"]["image"].startswith("postgres:")
    assert SERVICES["app"]["build"] == "."
    assert SERVICES["migrate"]["image"] == SERVICES["app"]["image"]
    assert SERVICES["publisher"]["image"] == SERVICES["app"]["image"]
    assert SERVICES["publisher"]["command"] == ["python", "manage.py", "realtime_publish"]
    assert _env("publisher") == _env("app")


def test_compose_publishes_only_pushpins_client_port() -> None:
    published = {name: svc.get("ports", []) for name, svc in SERVICES.items()}
    assert published == {
        "db": [],
        "migrate": [],
        "app": [],
        "publisher": [],
        "pushpin": ["7999:7999"],
        "pushpin-2": [],
        "balancer": ["8999:7999"],
    }
    assert not [name for name, svc in SERVICES.items() if "network_mode" in svc or "expose" in svc]
    assert DEPLOY_CONF.get("runner", "http_port") == "7999"


def test_compose_database_and_publish_api_stay_on_the_internal_network() -> None:
    assert COMPOSE["networks"]["backend"] == {"internal": True}
    assert {name: svc["networks"] for name, svc in SERVICES.items()} == {
        "db": ["backend"],
        "migrate": ["backend"],
        "app": ["backend"],
        "publisher": ["backend"],
        "pushpin": ["backend", "edge"],
        "pushpin-2": ["backend"],
        "balancer": ["backend", "edge"],
    }


def test_compose_healthchecks_and_start_order() -> None:
    for name in ("db", "app", "pushpin"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert "pg_isready -U chatdemo -d chatdemo" in SERVICES["db"]["healthcheck"]["test"][1]
    assert "http://127.0.0.1:8000/healthz/ready" in SERVICES["app"]["healthcheck"]["test"][-1]
    assert "/dev/tcp/127.0.0.1/7999" in SERVICES["pushpin"]["healthcheck"]["test"][-1]
    assert SERVICES["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("app", "publisher"):
        assert SERVICES[name]["depends_on"] == {
            "db": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
    # Pushpin does not wait for the app: the app's health includes Pushpin's publish API.
    assert "depends_on" not in SERVICES["pushpin"]


def test_compose_app_environment_points_at_the_services() -> None:
    env = _env("app")
    db_env = SERVICES["db"]["environment"]
    database = urlsplit(env["DATABASE_URL"])
    assert (database.scheme, database.hostname, database.port) == ("postgres", "db", 5432)
    assert database.path == f"/{db_env['POSTGRES_DB']}"
    assert database.username == db_env["POSTGRES_USER"]
    assert database.password == _interpolate(db_env["POSTGRES_PASSWORD"])

    grip = urlsplit(env["GRIP_URL"])
    assert (grip.scheme, grip.hostname, grip.port) == ("http", "pushpin", 5561)
    assert str(grip.port) == DEPLOY_CONF.get("handler", "push_in_http_port")
    assert DEPLOY_CONF.get("handler", "push_in_http_addr") == "0.0.0.0"  # noqa: S104
    query = parse_qs(grip.query)
    assert query == {
        "iss": [DEPLOY_CONF.get("proxy", "sig_iss")],
        "key": [DEPLOY_CONF.get("proxy", "sig_key")],
    }
    assert env["DJANGO_DEBUG"] == "0"
    assert env["DJANGO_HTTPS"] == "0"  # plain HTTP on localhost
    assert len(env["DJANGO_SECRET_KEY"]) >= 50
    assert "localhost" in env["DJANGO_ALLOWED_HOSTS"].split(",")
    assert "127.0.0.1" in env["DJANGO_ALLOWED_HOSTS"].split(",")  # the healthcheck's host
    assert _env("migrate") == {**env, "GRIP_URL": ""}


def test_compose_pushpin_mounts_the_rendered_config_read_only() -> None:
    assert SERVICES["pushpin"]["volumes"] == [
        "./deploy/pushpin/pushpin.conf:/etc/pushpin/pushpin.conf:ro",
        "./deploy/pushpin/routes:/etc/pushpin/routes:ro",
    ]
    for name, text in deployconf.render().items():
        assert (deployconf.DEPLOY_DIR / name).read_text() == text, (
            f"deploy/pushpin/{name} is stale: run python -m devstack.deployconf"
        )


def test_compose_scale_profile_balances_both_pushpins_and_publishes_to_each() -> None:
    """`docker compose --env-file deploy/compose-scale.env up`: HAProxy (the official image)
    in front of two Pushpins with the same configuration, and GRIP_URL naming both."""
    assert SERVICES["balancer"]["image"].startswith("haproxy:2.6")
    assert SERVICES["balancer"]["volumes"] == [
        "./deploy/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"
    ]
    assert SERVICES["pushpin-2"]["image"] == SERVICES["pushpin"]["image"]
    assert SERVICES["pushpin-2"]["volumes"] == SERVICES["pushpin"]["volumes"]
    assert (deployconf.HAPROXY_DIR / "haproxy.cfg").read_text() == deployconf.render_haproxy(), (
        "deploy/haproxy/haproxy.cfg is stale: run python -m devstack.deployconf"
    )
    servers = re.findall(r"^\s+server \S+ (\S+) check$", deployconf.render_haproxy(), re.M)
    assert servers == ["pushpin:7999", "pushpin-2:7999"]
    scale_env = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy" / "compose-scale.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert scale_env["COMPOSE_PROFILES"] == "scale"
    urls = scale_env["CHATDEMO_GRIP_URL"].strip('"').split()
    assert [urlsplit(url).hostname for url in urls] == ["pushpin", "pushpin-2"]
    assert {url.split("?")[1] for url in urls} == {urlsplit(_env("app")["GRIP_URL"]).query}


def test_deploy_pushpin_conf_differs_from_pushpin_conf_only_where_containers_need() -> None:
    source = read_config(PUSHPIN_CONF)
    changed = {
        (section, key)
        for section in source.sections()
        for key in source[section]
        if source.get(section, key) != DEPLOY_CONF.get(section, key)
    }
    assert changed == {
        ("runner", "services"),
        ("proxy", "zurl_out_specs"),
        ("proxy", "zurl_out_stream_specs"),
        ("proxy", "zurl_in_specs"),
        ("handler", "push_in_http_addr"),
    }
    assert DEPLOY_CONF.get("runner", "services") == "condure,zurl,pushpin-proxy,pushpin-handler"
    routes = [
        line
        for line in (deployconf.DEPLOY_DIR / "routes").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert routes == ["* app:8000"]


def test_dockerfile_collects_static_and_serves_the_app_on_the_routed_port() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    instructions = [line for line in lines if line and not line.startswith((" ", "#"))]
    assert instructions[0].startswith("FROM python:3.11-")
    assert any("manage.py collectstatic --no-input" in line for line in lines)
    cmd = next(line for line in instructions if line.startswith("CMD "))
    argv = yaml.safe_load(cmd.removeprefix("CMD "))
    assert argv[:3] == ["python", "-m", "chatdemo.serve"]
    assert argv[argv.index("--port") + 1] == "8000" == deployconf.APP_ORIGIN.split(":")[1]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"  # noqa: S104
    assert "USER app" in instructions
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]
    for path in ("manage.py", "templates", "static", *packages):
        assert any(line.split()[:2] == ["COPY", path] for line in instructions), path


def test_dockerfile_installs_the_hashed_runtime_lock_before_the_code() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    instructions = [line for line in lines if line and not line.startswith((" ", "#"))]
    # Nothing else is installed, so nothing comes in unhashed.
    [install] = [line for line in lines if "pip install" in line.split("#")[0]]
    assert install == (
        "RUN pip install --require-hashes -r requirements/runtime.txt && rm -r requirements"
    )
    # Only the lock comes in before the dependency layer, so a code change reuses it.
    before = instructions[: instructions.index(install)]
    assert [line for line in before if line.startswith("COPY ")] == [
        "COPY requirements/runtime.txt requirements/"
    ]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not [pattern for pattern in ignored if pattern.startswith("requirements")]


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".env", ".run", "staticfiles"} <= ignored


# --- the container's Pushpin configuration, run by the local Pushpin ------------------


@pytest.fixture(scope="module")
def container_pushpin(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """deploy/pushpin/pushpin.conf with only paths, ports and the route's host changed.

    The runner starts zurl itself, as in the container (the local Debian zurl
    is not used), in front of the session's app. Yields (client URL, GRIP_URL).
    """
    workdir = tmp_path_factory.mktemp("container-pushpin")
    (workdir / "run").mkdir()
    (workdir / "log").mkdir()
    ports = PushpinPorts.free()
    conf = read_config(deployconf.DEPLOY_DIR / "pushpin.conf")
    for section, key, value in (
        ("global", "rundir", str(workdir / "run")),
        ("runner", "logdir", str(workdir / "log")),
        ("runner", "http_port", str(ports.http)),
        ("handler", "push_in_http_addr", "127.0.0.1"),
        ("handler", "push_in_http_port", str(ports.publish)),
        ("handler", "push_in_spec", f"tcp://127.0.0.1:{ports.push_in}"),
        ("handler", "push_in_sub_specs", f"tcp://127.0.0.1:{ports.push_in_sub}"),
        ("handler", "command_spec", f"tcp://127.0.0.1:{ports.command}"),
    ):
        conf.set(section, key, value)
    with (workdir / "pushpin.conf").open("w") as fh:
        conf.write(fh)
    routes = (deployconf.DEPLOY_DIR / "routes").read_text()
    (workdir / "routes").write_text(routes.replace("app:8000", f"127.0.0.1:{stack.app.port}"))
    pushpin = Process(
        "pushpin",
        ["pushpin", "--config", str(workdir / "pushpin.conf")],
        log_path=workdir / "pushpin.out",
    ).start()
    url = f"http://127.0.0.1:{ports.http}"
    try:
        wait_until(
            lambda: pushpin.alive() and port_open(ports.http) and port_open(ports.publish),
            timeout=20,
            what="Pushpin with the container configuration",
        )
        # Ports open before the proxy and handler can route a GRIP hold: wait
        # for one full round trip, as devstack.pushpin.Pushpin.start does.
        wait_until(
            lambda: pushpin.alive() and http_ok(f"{url}{READY_PATH}", ok_below=300),
            timeout=20,
            what="a stream through Pushpin with the container configuration",
        )
        # The runner wrote zurl's config and started it: no system zurl is involved.
        assert (workdir / "run" / "zurl.pid").exists()
        yield (
            url,
            (
                f"http://127.0.0.1:{ports.publish}/?iss={conf.get('proxy', 'sig_iss')}"
                f"&key={conf.get('proxy', 'sig_key')}"
            ),
        )
    finally:
        pushpin.stop()


@pytest.mark.integration
def test_container_pushpin_conf_carries_chat_and_recovers_a_lost_publish(
    live_db: Stack,
    container_pushpin: tuple[str, str],
    subscribers: Subscribers,
    tmp_path: Path,
) -> None:
    url, grip_url = container_pushpin
    with publishing_to(live_db, grip_url, tmp_path) as publisher:
        room = f"t-{uuid.uuid4().hex[:12]}"
        [sub] = subscribers.open(f"{url}/rooms/{room}/events/")
        assert sub.response_headers is not None
        assert not [h for h in sub.response_headers if h.startswith("grip-")]

        post_unpublished(publisher, room, "lost")
        with transaction.atomic():
            message_post(room=room, author="Ann", text="next")
        # Pushpin fetched "lost" from the app through the runner's zurl (Grip-Link recovery).
        events = sub.wait_count("message", 2, timeout=20)
        assert [e.json()["text"] for e in events] == ["lost", "next"]

        posted = httpx.post(f"{url}/rooms/{room}/messages/", data={"from": "Bob", "text": "via"})
        assert posted.status_code == 200
        assert sub.wait_count("message", 3)[2].json() == posted.json()

"""The production settings, exercised in real processes with a production environment.

Each test starts ``manage.py`` or the app server in a subprocess, because settings are
read once at import: the test process itself runs with the test settings.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devstack import ROOT
from devstack.processes import free_port
from devstack.servers import AppServer
from tests.conftest import environ_without_settings, postgres_url

HOST = "chat.example.com"
SERVICE_ID = "SVC0123456789"
PUBLIC_PEM = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
)


def production_env(**overrides: str) -> dict[str, str]:
    """The environment docs/DEPLOY.md asks for, behind Fastly Fanout."""
    env = environ_without_settings()
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "chatdemo.settings",
            "DJANGO_SECRET_KEY": "p" * 20 + "-Q7x9!kz3@Lm2#Vb8$Rt5%Hn1^Wd6&Jc4*Fy0",
            "DJANGO_ALLOWED_HOSTS": HOST,
            "DJANGO_CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
            "DJANGO_SECURE_PROXY_SSL_HEADER": "1",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/chatdemo",
            "GRIP_URL": f"https://api.fastly.com/service/{SERVICE_ID}?verify-iss=fastly:{SERVICE_ID}&key=api-token",
            "GRIP_VERIFY_KEY": "base64:" + base64.b64encode(PUBLIC_PEM).decode(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def settings_under(env: dict[str, str], *names: str) -> dict[str, Any]:
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}, default=str))"
    )
    result = manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_passes_under_production_env() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_from_env() -> None:
    values = settings_under(
        production_env(),
        "DEBUG",
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
        "GRIP_PROXIES",
    )
    assert values == {
        "DEBUG": False,
        "ALLOWED_HOSTS": [HOST],
        "CSRF_TRUSTED_ORIGINS": [f"https://{HOST}"],
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "GRIP_PROXIES": [
            {
                "control_uri": f"https://api.fastly.com/service/{SERVICE_ID}",
                "key": "api-token",
                "verify_iss": f"fastly:{SERVICE_ID}",
                "verify_key": PUBLIC_PEM.decode(),
            }
        ],
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY is not set"),
        (
            {"GRIP_URL": "http://pushpin:5561/"},
            "GRIP_URL's entry for http://pushpin:5561 has no key",
        ),
        ({"GRIP_VERIFY_KEY": None}, "GRIP_URL points at Fastly but GRIP_VERIFY_KEY is not set"),
        ({"GRIP_VERIFY_KEY": "base64:aGVsbG8="}, "GRIP_VERIFY_KEY is not a public key"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG must be one of"),
        (
            {"DJANGO_FRAME_ANCESTORS": "https://a.example; script-src *"},
            "DJANGO_FRAME_ANCESTORS: 'https://a.example;' is not a CSP source",
        ),
        ({"RATE_LIMIT_POSTS": "lots"}, "RATE_LIMIT_POSTS must be 'off' or N/<period>"),
        ({"RATE_LIMIT_CLICKS": "30/0s"}, "RATE_LIMIT_CLICKS must be 'off' or N/<period>"),
        (
            {"RATE_LIMIT_CLIENT_HEADER": "X-Forwarded-For: 1.2.3.4"},
            "RATE_LIMIT_CLIENT_HEADER must be an HTTP header's name",
        ),
        (
            {"RATE_LIMIT_TRUSTED_PROXIES": "10.0.0.0/8, fastly"},
            "RATE_LIMIT_TRUSTED_PROXIES must list IP addresses or networks such as 10.0.0.0/8; "
            "got 'fastly'",
        ),
    ],
    ids=[
        "no-secret-key",
        "keyless-grip-url",
        "fastly-without-verify-key",
        "bad-verify-key",
        "bad-debug",
        "bad-frame-ancestors",
        "bad-posts-limit",
        "bad-clicks-limit",
        "bad-client-header",
        "bad-trusted-proxies",
    ],
)
def test_bad_production_env_stops_startup_naming_the_variable(
    overrides: dict[str, str | None], message: str
) -> None:
    env = production_env()
    for key, value in overrides.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    result = manage("check", env=env)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr


# --- the app under granian with production settings -----------------------------------


@pytest.fixture(scope="module")
def production_app(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    """collectstatic into a temp STATIC_ROOT (as the Dockerfile does), then the app server."""
    static_root = tmp_path_factory.mktemp("static")
    env = production_env(
        DJANGO_STATIC_ROOT=str(static_root),
        DJANGO_ALLOWED_HOSTS=f"{HOST},127.0.0.1",
        DATABASE_URL=postgres_url(),
        GRIP_URL="",  # Fastly is not reachable from here; the direct mode has the same headers
    )
    result = manage("collectstatic", "--no-input", "-v", "0", env=env)
    assert result.returncode == 0, result.stderr
    assert (Path(static_root) / "staticfiles.json").exists()
    app = AppServer(
        port=free_port(),
        env=env,
        log_path=tmp_path_factory.mktemp("app") / "app.log",
        ready_path="/healthz/live",
    )
    app.start()
    yield app
    app.stop()


def _get(app: AppServer, path: str, *, https: bool = True) -> httpx.Response:
    headers = {"Host": HOST, **({"X-Forwarded-Proto": "https"} if https else {})}
    return httpx.get(app.url + path, headers=headers, timeout=10)


@pytest.mark.integration
def test_plain_http_is_redirected_to_https(production_app: AppServer) -> None:
    response = _get(production_app, "/chat/", https=False)
    assert response.status_code == 301
    assert response.headers["location"] == f"https://{HOST}/chat/"


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/healthz/live", "/healthz/ready"])
def test_healthz_is_not_redirected(production_app: AppServer, path: str) -> None:
    response = _get(production_app, path, https=False)
    assert response.status_code == 200
    assert response.json()["ok"] is True
    # The full report too (200 or 503, as the test database's publisher stands).
    assert _get(production_app, "/healthz", https=False).status_code in {200, 503}


@pytest.mark.integration
def test_security_headers_on_pages(production_app: AppServer) -> None:
    response = _get(production_app, "/chat/")
    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cross-origin-opener-policy"] == "same-origin"


@pytest.mark.integration
def test_static_files_served_by_the_app_with_hashed_names(production_app: AppServer) -> None:
    html = _get(production_app, "/chat/").text
    [href] = [part.split('"')[0] for part in html.split('href="/static/css/app.')[1:]]
    assert href.endswith(".css") and len(href) > len("css")  # app.<hash>.css
    css = _get(production_app, f"/static/css/app.{href}")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "max-age=315360000" in css.headers["cache-control"]
    assert "immutable" in css.headers["cache-control"]


@pytest.mark.integration
def test_disallowed_host_gets_400(production_app: AppServer) -> None:
    response = httpx.get(production_app.url + "/chat/", headers={"Host": "evil.example"})
    assert response.status_code == 400

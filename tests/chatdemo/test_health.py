"""GET /healthz: the database and the GRIP publish target, 200 when both answer, 503 otherwise."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from devstack.processes import free_port
from realtime import log
from realtime.models import Channel, Event
from tests.conftest import Stack


def _health(client: Client | None = None) -> tuple[int, dict[str, Any]]:
    response = (client or Client()).get("/healthz")
    body = response.json()
    for target in body["grip"].get("targets", []):
        assert isinstance(target.pop("ms"), float)
    return response.status_code, body


@pytest.mark.integration
def test_healthz_ok_with_database_and_pushpin(live_db: Stack) -> None:
    status, body = _health()
    assert (status, body) == (
        200,
        {
            "ok": True,
            "database": {"ok": True, "vendor": "postgresql"},
            "grip": {
                "ok": True,
                "mode": "grip",
                "targets": [{"target": live_db.pushpin.publish_url, "status": 200, "ok": True}],
            },
            "publisher": {"lag_seconds": None},
        },
    )


@pytest.mark.django_db
def test_healthz_503_when_publish_target_is_down(settings: Any) -> None:
    port = free_port()  # nothing listens there
    settings.GRIP_URL = f"http://127.0.0.1:{port}/?iss=pushpin&key={'k' * 32}"
    status, body = _health()
    assert status == 503
    assert body["ok"] is False
    assert body["database"] == {"ok": True, "vendor": "postgresql"}
    [target] = body["grip"]["targets"]
    assert target["target"] == f"http://127.0.0.1:{port}"
    assert target["ok"] is False
    assert "refused" in target["error"].lower()


@pytest.mark.django_db
def test_healthz_direct_mode_without_proxy(settings: Any) -> None:
    settings.GRIP_URL = ""
    assert _health() == (
        200,
        {
            "ok": True,
            "database": {"ok": True, "vendor": "postgresql"},
            "grip": {"ok": True, "mode": "direct"},
            "publisher": {"lag_seconds": None},
        },
    )


@pytest.mark.django_db
def test_healthz_reports_the_age_of_the_oldest_unpublished_event(settings: Any) -> None:
    settings.GRIP_URL = ""
    with transaction.atomic():
        log.lock_channel("room-a")
        log.send("room-a", "message", {"n": 1})
    Event.objects.update(created=timezone.now() - datetime.timedelta(seconds=90))
    lag = _health()[1]["publisher"]["lag_seconds"]
    assert 90 <= lag < 120
    Channel.objects.update(published_id=1)
    assert _health()[1]["publisher"] == {"lag_seconds": None}


@pytest.mark.django_db
def test_healthz_rejects_post() -> None:
    response = Client().post("/healthz")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.django_db
def test_request_log_is_one_key_value_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="chatdemo.request"):
        Client().get("/rooms/lobby/messages/?x=secret")
    [record] = [r for r in caplog.records if r.name == "chatdemo.request"]
    line = record.getMessage()
    assert line.startswith("request method=GET path=/rooms/lobby/messages/ status=200 ms=")
    assert line.endswith(" proxied=false")
    assert "secret" not in line

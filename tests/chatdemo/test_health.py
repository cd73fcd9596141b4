"""The health probes: /healthz/live and /healthz/ready for balancers, /healthz in full."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from chatdemo import health
from devstack.processes import wait_until
from realtime import log, publisher
from realtime.models import Channel, Event, PublisherBeat
from tests.conftest import Stack


def _health(path: str = "/healthz") -> tuple[int, dict[str, Any]]:
    response = Client().get(path)
    return response.status_code, response.json()


def _beat(name: str, *, active: bool, age: float, proxies: list[dict[str, Any]]) -> None:
    PublisherBeat.objects.create(
        name=name,
        active=active,
        beat_at=timezone.now() - datetime.timedelta(seconds=age),
        proxies=proxies,
    )


UP = {
    "target": "http://127.0.0.1:5561",
    "up": True,
    "lag_seconds": 0.0,
    "last_error": None,
    "last_error_seconds_ago": None,
}


@pytest.mark.integration
def test_healthz_reports_the_live_publisher_and_its_proxy(live_db: Stack) -> None:
    """The stack's real publisher writes its heartbeat; the report says what it sees."""
    wait_until(lambda: _health()[0] == 200, timeout=10, what="a healthy report from the heartbeat")
    status, body = _health()
    publisher = body["publisher"]
    assert (status, body["ok"], body["database"]) == (
        200,
        True,
        {"ok": True, "vendor": "postgresql"},
    )
    assert publisher["ok"] is True
    assert publisher["mode"] == "grip"
    assert 0 <= publisher["heartbeat_age_seconds"] < 5
    [proxy] = publisher["proxies"]
    # A test that restarted the session's Pushpin may have left a last_error, with its age.
    assert (proxy["target"], proxy["up"], proxy["lag_seconds"]) == (
        live_db.pushpin.publish_url,
        True,
        0.0,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/healthz/live", "/healthz/ready"])
def test_balancer_probes_need_no_publisher_and_no_proxy(path: str) -> None:
    """Nothing beyond this process and its database: no heartbeat at all, no proxy."""
    status, body = _health(path)
    assert status == 200
    assert body["ok"] is True


# The publisher's report is read here in the test's own transaction, with every heartbeat
# of the database removed first: a stack that a test session runs has a real publisher
# beating into this database. /healthz itself is checked end to end by
# test_healthz_reports_the_live_publisher_and_its_proxy and tests/realtime/test_many_proxies.py.


@pytest.mark.django_db
def test_publishing_not_ok_when_no_publisher_beats() -> None:
    PublisherBeat.objects.all().delete()
    report = health.publishing()
    assert report["ok"] is False
    assert report["error"] == "no active publisher has written a heartbeat"


@pytest.mark.django_db
def test_publishing_not_ok_when_the_active_publisher_went_silent() -> None:
    PublisherBeat.objects.all().delete()
    _beat("old:1", active=True, age=30, proxies=[UP])
    _beat("standby:2", active=False, age=0.5, proxies=[])
    report = health.publishing()
    assert report["ok"] is False
    assert report["standbys"] == 1
    assert report["error"] == "the active publisher's last heartbeat is 30 s old"


@pytest.mark.django_db
def test_publishing_not_ok_names_a_proxy_that_is_down() -> None:
    PublisherBeat.objects.all().delete()
    down = {**UP, "target": "http://127.0.0.1:5571", "up": False, "lag_seconds": 12.5}
    down["last_error"] = "http://127.0.0.1:5571: TimeoutError: timed out"
    _beat("pub:1", active=True, age=0.2, proxies=[UP, down])
    report = health.publishing()
    assert report["ok"] is False
    assert report["active"] == "pub:1"
    assert report["proxies"] == [UP, down]
    assert 0.2 <= report["heartbeat_age_seconds"] < 3


@pytest.mark.django_db  # uncommitted, so that no running publisher publishes it meanwhile
def test_publisher_status_reports_the_age_of_the_oldest_unpublished_event() -> None:
    _beat("pub:1", active=True, age=0.2, proxies=[])
    with transaction.atomic():
        log.lock_channel("room-a")
        log.send("room-a", "message", {"n": 1})
    Event.objects.update(created=timezone.now() - datetime.timedelta(seconds=90))
    lag = publisher.status()["lag_seconds"]
    assert 90 <= lag < 120
    Channel.objects.update(published_id=1)
    assert publisher.status()["lag_seconds"] is None


@pytest.mark.django_db
def test_health_check_that_hangs_is_reported_within_its_bound() -> None:
    started = time.monotonic()
    report = health.bounded(lambda: time.sleep(health.CHECK_SECONDS + 1) or {"ok": True})
    assert time.monotonic() - started < health.CHECK_SECONDS + 0.5
    assert report == {"ok": False, "error": "no answer within 2 s"}


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

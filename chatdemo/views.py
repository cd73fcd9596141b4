"""Project-level pages: the home page and the health probes (chatdemo.health)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from base.http import api_view
from chat.validation import DEFAULT_ROOM
from chatdemo import health


def home(request: HttpRequest) -> HttpResponse:
    """The home page; ``/?user=<nick>`` (the original chat's link) goes to the default room."""
    if "user" in request.GET:
        return redirect(
            reverse("chat:original-room", kwargs={"room": DEFAULT_ROOM})
            + f"?{request.GET.urlencode()}"
        )
    return render(request, "home.html")


def _probe(view: Callable[[HttpRequest], JsonResponse]) -> Callable[..., HttpResponse]:
    """A health probe's view: no CSRF page (a POST gets the API's JSON 405), never cached."""
    return csrf_exempt(never_cache(api_view("GET")(view)))


@_probe
def healthz_live(request: HttpRequest) -> JsonResponse:
    """Liveness: this process answers requests."""
    return JsonResponse({"ok": True})


@_probe
def healthz_ready(request: HttpRequest) -> JsonResponse:
    """Readiness, for the load balancer: this process and its database answer.

    Neither a proxy nor the publisher counts: one origin's readiness must not
    hang on something every origin shares.
    """
    database = health.bounded(health.database)
    return JsonResponse({"ok": database["ok"], "database": database}, status=_status(database))


@_probe
def healthz(request: HttpRequest) -> JsonResponse:
    """The full report: the database, and (from the publisher's heartbeat) the publisher,
    each proxy and the lag. 503 when any of them is not well; for people and monitoring,
    not for the load balancer (that is ``/healthz/ready``)."""
    database = health.bounded(health.database)
    body: dict[str, Any] = {"ok": database["ok"], "database": database}
    if database["ok"]:
        body["publisher"] = health.bounded(health.publishing)
        body["ok"] = body["publisher"]["ok"]
    return JsonResponse(body, status=_status(body))


def _status(report: dict[str, Any]) -> int:
    return 200 if report["ok"] else 503

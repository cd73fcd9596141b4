"""Project-level pages: the home page and the health check."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from base.http import api_view
from chat.validation import DEFAULT_ROOM
from realtime import proxy, publisher


def home(request: HttpRequest) -> HttpResponse:
    """The home page; ``/?user=<nick>`` (the original chat's link) goes to the default room."""
    if "user" in request.GET:
        return redirect(
            reverse("chat:original-room", kwargs={"room": DEFAULT_ROOM})
            + f"?{request.GET.urlencode()}"
        )
    return render(request, "home.html")


@csrf_exempt  # so that a POST gets the API's JSON 405, not a CSRF page
@never_cache
@api_view("GET")
def healthz(request: HttpRequest) -> JsonResponse:
    """The database, the GRIP publish target and the publisher's lag.

    200 when the database and the proxy answer, 503 otherwise. The publisher
    runs in a process of its own, so its lag is reported but does not make
    this app process unhealthy.
    """
    database = database_status()
    grip = proxy.status()
    ok = database["ok"] and grip["ok"]
    body = {"ok": ok, "database": database, "grip": grip}
    if database["ok"]:
        body["publisher"] = {"lag_seconds": publisher.lag_seconds()}
    return JsonResponse(body, status=200 if ok else 503)


def database_status() -> dict[str, Any]:
    """Whether the default database answers a query (the first error line if not)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        return {"ok": False, "vendor": connection.vendor, "error": str(error).splitlines()[0]}
    return {"ok": True, "vendor": connection.vendor}

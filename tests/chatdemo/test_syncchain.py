"""The middleware chain runs in one thread under ASGI (chatdemo.syncchain)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient
from django.urls import path

seen: dict[str, int] = {}


class RecordThread:
    """A sync-and-async-capable middleware, like Django's own, that notes its thread."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        seen["middleware"] = threading.get_ident()
        return self.get_response(request)


def probe(request: HttpRequest) -> HttpResponse:
    seen["view"] = threading.get_ident()
    return HttpResponse("ok")


urlpatterns = [path("probe/", probe)]


def test_sync_chain_is_the_innermost_middleware() -> None:
    assert settings.MIDDLEWARE[-1] == "chatdemo.syncchain.SyncChainMiddleware"


@pytest.mark.urls(__name__)
def test_sync_chain_keeps_middleware_and_view_in_one_thread(settings: Any) -> None:
    """Without it, Django runs a sync-and-async-capable middleware above a sync view in
    async mode under ASGI (the view handler is async), so the two never share a thread."""
    settings.MIDDLEWARE = [f"{__name__}.RecordThread", "chatdemo.syncchain.SyncChainMiddleware"]
    seen.clear()
    response = async_to_sync(AsyncClient().get)("/probe/")
    assert response.status_code == 200
    assert seen["middleware"] == seen["view"]


@pytest.mark.urls(__name__)
def test_without_sync_chain_middleware_and_view_run_in_different_threads(settings: Any) -> None:
    """The control: what the sync chain removes."""
    settings.MIDDLEWARE = [f"{__name__}.RecordThread"]
    seen.clear()
    response = async_to_sync(AsyncClient().get)("/probe/")
    assert response.status_code == 200
    assert seen["middleware"] != seen["view"]

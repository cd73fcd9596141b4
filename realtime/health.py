"""What the health check asks of the realtime side: can the proxy be published to."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

import django_grip
from django.conf import settings


def proxy_status(timeout: float = 2.0) -> dict[str, Any]:
    """Whether the GRIP proxy's publish API accepts a publish, for the health check.

    Sends an empty publish (``{"items": []}``) to each configured proxy with
    the credentials real publishes use, so a wrong key shows up here and not
    first as lost events. ``{"ok": true, "mode": "direct"}`` when no proxy is
    configured. The target is reported without its key.
    """
    if not settings.GRIP_URL:
        return {"ok": True, "mode": "direct"}
    targets = []
    for client in django_grip.get_pubcontrol().clients:
        headers = {"Content-Type": "application/json"}
        auth = client._gen_auth_header()  # the header pubcontrol publishes with
        if auth:
            headers["Authorization"] = auth
        request = urllib.request.Request(  # noqa: S310 - GRIP_URL is http(s), checked in settings
            f"{client.uri}/publish/", data=b'{"items": []}', headers=headers, method="POST"
        )
        started = time.monotonic()
        target: dict[str, Any] = {"target": client.uri}
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                target["status"] = response.status
        except urllib.error.HTTPError as error:
            target["status"] = error.code
        except OSError as error:
            target["error"] = str(getattr(error, "reason", error))
        target["ok"] = 200 <= target.get("status", 0) < 300
        target["ms"] = round((time.monotonic() - started) * 1000, 1)
        targets.append(target)
    return {
        "ok": bool(targets) and all(t["ok"] for t in targets),
        "mode": "grip",
        "targets": targets,
    }

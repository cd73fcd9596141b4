"""The GRIP proxy's publish API, through gripcontrol: publishing, and whether it answers."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings

from realtime import log
from realtime.eventstream import grip_channel, proxy_sse
from realtime.grip import GripPubControl, HttpStreamFormat, parse_grip_uri
from realtime.models import Event


class PublishError(Exception):
    """The proxy did not take a batch; it is sent again, from its first event."""


def _pubcontrol() -> GripPubControl:
    """A publisher for every configured proxy (``GRIP_PROXIES``, then ``GRIP_URL``)."""
    proxies = [*getattr(settings, "GRIP_PROXIES", [])]
    if settings.GRIP_URL:
        proxies.append(parse_grip_uri(settings.GRIP_URL))
    return GripPubControl(proxies)


class GripTransport:
    """Publishes events to the proxy as django-eventstream's streams expect them.

    Each event goes to the stream channel ``events-<channel>`` with ``id`` and
    ``prev-id``, as SSE whose ``id:`` line Pushpin's ``build-id`` filter
    renders (``%I``), as django-eventstream's own ``send_event`` does. A batch
    goes out in requests of up to ten events, in order.
    """

    def __init__(self) -> None:
        self._pubcontrol = _pubcontrol()

    def publish(self, events: Sequence[Event]) -> None:
        results: list[tuple[bool, str]] = []
        for event in events:
            content = proxy_sse(event.type, log.data_text(event.data))
            self._pubcontrol.publish_http_stream(
                grip_channel(event.channel.name),
                HttpStreamFormat(content, content_filters=["build-id"]),
                id=str(event.seq),
                prev_id=str(event.seq - 1),
                callback=lambda ok, message: results.append((ok, message)),
            )
        self._pubcontrol.wait_all_sent()
        errors = [message for ok, message in results if not ok]
        if errors or len(results) != len(events):
            raise PublishError(errors[0] if errors else "a publish was never answered")


class NoProxy:
    """Direct mode (``GRIP_URL`` empty): nothing to publish to; streams read the log."""

    def publish(self, events: Sequence[Event]) -> None:
        return None


def transport() -> GripTransport | NoProxy:
    return (
        GripTransport() if settings.GRIP_URL or getattr(settings, "GRIP_PROXIES", []) else NoProxy()
    )


def status(timeout: float = 2.0) -> dict[str, Any]:
    """Whether each proxy's publish API accepts a publish, for the health check.

    Sends an empty publish (``{"items": []}``) with the credentials real
    publishes use, so a wrong key shows up here and not first as lost events.
    ``{"ok": true, "mode": "direct"}`` when no proxy is configured. Targets
    are reported without their key.
    """
    if not settings.GRIP_URL:
        return {"ok": True, "mode": "direct"}
    started = time.monotonic()
    answers = _pubcontrol().http_call(
        "/publish/", b'{"items": []}', {"Content-Type": "application/json"}
    )
    elapsed = round((time.monotonic() - started) * 1000, 1)
    targets = []
    for client, answer in answers.items():
        target: dict[str, Any] = {"target": client.uri, "ms": elapsed}
        if isinstance(answer[0], Exception):
            target["error"] = str(answer[0])
        else:
            target["status"] = answer[0]
        target["ok"] = 200 <= target.get("status", 0) < 300
        targets.append(target)
    return {
        "ok": bool(targets) and all(t["ok"] for t in targets),
        "mode": "grip",
        "targets": targets,
    }

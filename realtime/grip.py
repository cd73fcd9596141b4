"""The door to django-grip, gripcontrol and pubcontrol: the one module of the project that
imports them.

What we use of them through their documented interfaces:

- django-grip's ``GripMiddleware`` (in settings), which verifies ``Grip-Sig`` and gives
  each request ``request.grip``: whether it came through the proxy (``proxied``), the
  proxy's last ids (``last``), and the instruction the response carries
  (``instruct``);
- gripcontrol's ``parse_grip_uri``, which reads a ``GRIP_URL`` entry.

Publishing does not go through pubcontrol: its HTTP calls have no timeout, so
a proxy that stops answering would hold the publisher for good.
:class:`PublishClient` speaks GRIP's publish protocol itself (a ``POST`` of
``{"items": [...]}`` to ``<control_uri>/publish/``, authorized as gripcontrol
does: a JWT with the entry's ``iss`` signed with its ``key``, or the key as a
bearer token), with every call bounded by a timeout.

What else we rely on is not documented (editing an instruction's channel list and
filters): docs/BORROWED.md lists it with the test that fails when it changes, and
pyproject.toml bounds each package.

Nothing here touches the database or Django's settings, nor imports
django-eventstream (which reads the settings), at import time: the settings
module imports :mod:`realtime.gripconf`, which imports this.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import jwt
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from gripcontrol import parse_grip_uri

__all__ = [
    "PublishClient",
    "configured",
    "last_ids",
    "parse_grip_uri",
    "proxied",
    "shape_stream_instruction",
    "stream_item",
]


def configured() -> bool:
    """Whether a GRIP proxy is configured (``GRIP_PROXIES``); if not, the app streams itself."""
    return bool(settings.GRIP_PROXIES)


def proxied(request: HttpRequest) -> bool:
    """Whether the request came through the proxy (its ``Grip-Sig`` verified)."""
    grip = getattr(request, "grip", None)
    return bool(grip is not None and grip.proxied)


def last_ids(request: HttpRequest) -> dict[str, str]:
    """The proxy's ``Grip-Last`` ids of a proxied request, by GRIP channel."""
    grip = getattr(request, "grip", None)
    return dict(grip.last) if grip is not None else {}


def shape_stream_instruction(
    request: HttpRequest,
    response: HttpResponse,
    *,
    keep_channel: Callable[[str], bool],
    next_link_timeout: int,
) -> bool:
    """Trim django-eventstream's GRIP instruction to what our streams use (the channels
    ``keep_channel`` accepts, with no filter), and set when the proxy comes back to the
    stream's next link. Returns whether the response carries an instruction.

    django-eventstream also subscribes every stream to ``user-<id>`` (to kick
    a user off a channel) and runs two filters on every delivery:
    ``skip-users`` (for ``send_event(skip_user_ids=...)``) and ``build-id``,
    which renders each event's id from the stream's channels. Neither the user
    channel nor ``skip-users`` is used here. A stream has exactly one channel,
    so the publisher renders the id itself (:func:`stream_item`): at 5,000
    subscribers the filters cost Pushpin's handler about 30% more CPU per
    delivery than on bare streams (docs/BENCHMARKS.md). Without them, the
    answer's body goes to the client as it is (``eventstream.plain_grip_body``).

    The ``Grip-Link`` header is written here, not by django-grip, which
    cannot say ``timeout=0`` (it leaves out any timeout that is not positive,
    and the proxy then waits its default): ``0`` asks the proxy to come back
    at once, for a stream that has more to catch up on. django-eventstream
    builds the link from the decoded path: a room such as ``café`` or ``a,b``
    must be percent-encoded in it (a ``,`` would split the header in two).
    """
    grip = getattr(request, "grip", None)
    instruct: Any = getattr(grip, "instruct", None)
    if instruct is None:
        return False
    instruct.channels = [c for c in instruct.channels if keep_channel(c.name)]
    for channel in instruct.channels:
        channel.filters = []
    link: str = instruct.next_link
    if link:
        if link.startswith(f"{request.path}?"):
            link = quote(request.path, safe="/") + link[len(request.path) :]
        instruct.next_link = ""  # so that django-grip writes no Grip-Link of its own
        response["Grip-Link"] = f"<{link}>; rel=next; timeout={max(0, next_link_timeout)}"
    return True


def stream_item(channel: str, content: str, *, id: str, prev_id: str) -> dict[str, Any]:
    """A GRIP publish item for HTTP streams: ``content`` (SSE with its ids written in)
    on ``channel``, delivered to a stream only after ``prev_id``; ``id`` is the
    last event's."""
    return {
        "channel": channel,
        "id": id,
        "prev-id": prev_id,
        "formats": {"http-stream": {"content": content}},
    }


class PublishError(Exception):
    """The proxy did not take a publish."""


class PublishClient:
    """One proxy's publish API (a ``GRIP_PROXIES`` entry), over one kept-alive connection,
    every call bounded by ``timeout`` seconds (connect, send and answer each)."""

    def __init__(self, entry: dict[str, Any], *, timeout: float) -> None:
        self.entry = entry
        self.timeout = timeout
        control = urlsplit(entry["control_uri"])
        self.target = entry["control_uri"]  # reported without its key
        self._https = control.scheme == "https"
        self._netloc = control.netloc
        self._path = control.path.rstrip("/") + "/publish/"
        self._connection: http.client.HTTPConnection | None = None

    def publish(self, items: Sequence[dict[str, Any]]) -> None:
        """Hand ``items`` to the proxy, in order; raise :class:`PublishError` if it did not
        take them within the timeout."""
        body = json.dumps({"items": list(items)}).encode()
        try:
            status, text = self._post(body)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise PublishError(f"{self.target}: {type(error).__name__}: {error}") from None
        if not 200 <= status < 300:
            raise PublishError(f"{self.target}: HTTP {status}: {text[:200]}")

    def probe(self) -> None:
        """An empty publish on a connection of its own (the publishing one is not shared
        across threads); raise :class:`PublishError` unless the proxy takes it in time."""
        client = PublishClient(self.entry, timeout=self.timeout)
        try:
            client.publish([])
        finally:
            client.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _post(self, body: bytes) -> tuple[int, str]:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._connection = kind(self._netloc, timeout=self.timeout)
        headers = {"Content-Type": "application/json"}
        auth = self._authorization()
        if auth:
            headers["Authorization"] = auth
        self._connection.request("POST", self._path, body=body, headers=headers)
        response = self._connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")

    def _authorization(self) -> str | None:
        key = self.entry.get("key")
        if key is None:
            return None
        iss = self.entry.get("control_iss")
        if iss is None:
            return f"Bearer {key.decode() if isinstance(key, bytes) else key}"
        claims = {"iss": iss, "exp": int(time.time()) + 3600}
        return f"Bearer {jwt.encode(claims, key, algorithm='HS256')}"

"""The door to django-grip, gripcontrol and pubcontrol: the one module of the project that
imports them.

What we use of them through their documented interfaces:

- django-grip's ``GripMiddleware`` (in settings), which verifies ``Grip-Sig`` and gives
  each request ``request.grip``: whether it came through the proxy (``proxied``), the
  proxy's last ids (``last``), and the instruction the response carries
  (``instruct``, with ``set_next_link``);
- gripcontrol's ``parse_grip_uri``, ``GripPubControl`` and ``HttpStreamFormat`` to
  publish to the proxy.

What else we rely on is not documented (editing an instruction's channel list and
filters): docs/BORROWED.md lists it with the test that fails when it changes, and
pyproject.toml bounds each package.

Nothing here touches the database or Django's settings, nor imports
django-eventstream (which reads the settings), at import time: the settings
module imports :mod:`realtime.gripconf`, which imports this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django.http import HttpRequest
from gripcontrol import GripPubControl, HttpStreamFormat, parse_grip_uri

__all__ = [
    "GripPubControl",
    "HttpStreamFormat",
    "last_ids",
    "parse_grip_uri",
    "proxied",
    "shape_stream_instruction",
]


def proxied(request: HttpRequest) -> bool:
    """Whether the request came through the proxy (its ``Grip-Sig`` verified)."""
    grip = getattr(request, "grip", None)
    return bool(grip is not None and grip.proxied)


def last_ids(request: HttpRequest) -> dict[str, str]:
    """The proxy's ``Grip-Last`` ids of a proxied request, by GRIP channel."""
    grip = getattr(request, "grip", None)
    return dict(grip.last) if grip is not None else {}


def shape_stream_instruction(
    request: HttpRequest, *, keep_channel: Callable[[str], bool], next_link_timeout: int
) -> None:
    """Trim django-eventstream's GRIP instruction to what our streams use (the channels
    ``keep_channel`` accepts), and set when the proxy comes back to the stream's next link.

    django-eventstream also subscribes every stream to ``user-<id>`` (to kick
    a user off a channel) and runs the ``skip-users`` filter on every
    delivery (for ``send_event(skip_user_ids=...)``). Neither is used here,
    and both cost Pushpin work per stream and per delivery: at 5,000
    subscribers its handler spent about 30% more CPU per delivery on these
    streams than on bare ones (docs/BENCHMARKS.md). ``build-id`` stays: it
    renders each event's id and unescapes the ``%%`` in stored data.

    django-eventstream builds the next link from the decoded path: a room such
    as ``café`` or ``a,b`` must be percent-encoded in ``Grip-Link`` (a ``,``
    there would split the header's value in two).
    """
    grip = getattr(request, "grip", None)
    instruct: Any = getattr(grip, "instruct", None)
    if instruct is None:
        return
    instruct.channels = [c for c in instruct.channels if keep_channel(c.name)]
    for channel in instruct.channels:
        channel.filters = [f for f in channel.filters if f != "skip-users"]
    link: str = instruct.next_link
    if link:
        if link.startswith(f"{request.path}?"):
            link = quote(request.path, safe="/") + link[len(request.path) :]
        instruct.set_next_link(link, timeout=next_link_timeout)

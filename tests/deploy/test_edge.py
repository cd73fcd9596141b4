"""edge/: the Fastly Compute app hands exactly the app's SSE requests to Fanout.

The routing rule runs under the machine's Node.js (the Fastly runtime itself
is not available here), and each case is checked against the app: a request
goes to Fanout if and only if the app answers it with an event stream.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
from django.test import Client

from devstack import ROOT
from leaderboard import services as leaderboard_services
from tests.conftest import Drain

ROUTING = ROOT / "edge" / "src" / "routing.js"


def _node(cases: list[tuple[str, str, str | None]]) -> list[bool]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is missing; install it with: sudo apt-get install -y nodejs")
    script = (
        f"import {{ handsOffToFanout }} from {json.dumps(str(ROUTING))};\n"
        f"const cases = {json.dumps(cases)};\n"
        "console.log(JSON.stringify(cases.map(([m, p, a]) => handsOffToFanout(m, p, a))));\n"
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.django_db
def test_edge_hands_off_exactly_the_requests_the_app_streams(
    published: Drain, settings: Any
) -> None:
    board = leaderboard_services.board_create(name="Edge", players=["Ann", "Bob"])
    player_id = board.players.values_list("pk", flat=True).first()
    b = board.pk
    cases: list[tuple[str, str, str | None]] = [
        ("GET", "/rooms/lobby/events/", None),
        ("GET", "/rooms/lobby/events/", "text/event-stream"),
        ("HEAD", "/rooms/lobby/events/", None),
        ("POST", "/rooms/lobby/events/", None),
        ("GET", "/rooms/lobby/messages/", "text/event-stream"),
        ("POST", "/rooms/lobby/messages/", None),
        ("GET", f"/boards/{b}/", "text/event-stream"),
        ("GET", f"/boards/{b}/", "text/html, text/event-stream;q=0.9"),
        ("GET", f"/boards/{b}/", "application/json"),
        ("GET", f"/boards/{b}/", None),
        ("GET", f"/boards/{b}/", "*/*"),
        ("POST", f"/boards/{b}/players/{player_id}/score-add/", "text/event-stream"),
        ("GET", f"/boards/{b}/players/{player_id}/", "text/event-stream"),
        ("GET", f"/leaderboard/{b}/", "text/event-stream"),
        ("GET", "/chat/lobby/", None),
        ("GET", "/healthz", None),
    ]
    handed_off = _node(cases)
    # Which requests the app streams, asked as a direct client (with a proxy configured,
    # the app answers streams only through it).
    settings.GRIP_URL = ""

    def app_streams(method: str, path: str, accept: str | None) -> bool:
        extra: dict[str, Any] = {"HTTP_ACCEPT": accept} if accept else {}
        # Not closed: closing fires request_finished, which would close the
        # test's database connection; the stream is never iterated anyway.
        response = Client().generic(method, path, **extra)
        return response.get("Content-Type", "").startswith("text/event-stream")

    expected = [app_streams(*case) for case in cases]
    assert list(zip(cases, handed_off, strict=True)) == list(zip(cases, expected, strict=True))
    assert handed_off.count(True) == 5  # the cases above that stream

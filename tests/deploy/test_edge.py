"""edge/: the Fastly Compute app hands exactly the app's SSE requests to Fanout.

The routing rule runs under the machine's Node.js (the Fastly runtime itself
is not available here), and each case is checked against the app: a request
goes to Fanout if and only if the app answers it with an event stream. A table
of cases says it exactly; Hypothesis then builds batches of requests (room
names and board ids of every kind, encoded every way, with and without the
trailing slash, with Accept and query variants), and each batch goes to Node
in one run and to the app one request at a time.

``make test`` draws the same batches every time; ``FUZZ_RANDOM=1`` draws new
ones and ``EDGE_BATCHES`` sets how many (as tests/fuzz/test_api.py does).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client, RequestFactory
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from base.errors import DomainError
from base.ids import parse_id
from chat.validation import validate_room
from devstack import ROOT
from leaderboard import services as leaderboard_services
from leaderboard.models import Board
from tests.conftest import Drain

ROUTING = ROOT / "edge" / "src" / "routing.js"
# index.js reads `new URL(request.url)`; the cases are parsed the same way.
EDGE_ORIGIN = "https://edge.example"

Case = tuple[str, str, str | None]  # method, request target, Accept


def _node(cases: Sequence[Case]) -> list[tuple[bool, str]]:
    """What the edge does with each case, in one Node run: whether it hands the
    request to Fanout, and the path and query it saw (the URL parser's form, which
    is also what a browser sends)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is missing; install it with: sudo apt-get install -y nodejs")
    script = (
        'import { readFileSync } from "node:fs";\n'
        f"import {{ handsOffToFanout }} from {json.dumps(str(ROUTING))};\n"
        'const cases = JSON.parse(readFileSync(0, "utf8"));\n'
        "console.log(JSON.stringify(cases.map(([method, target, accept]) => {\n"
        f"  const url = new URL(target, {json.dumps(EDGE_ORIGIN)});\n"
        "  return [handsOffToFanout(method, url, accept), url.pathname + url.search];\n"
        "})));\n"
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", script],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [(handed_off, target) for handed_off, target in json.loads(result.stdout)]


def _app_streams(method: str, target: str, accept: str | None) -> bool:
    """Whether the app answers the request with an event stream, asked as a direct
    client (the test sets GRIP_PROXIES to []: with a proxy configured, the app
    answers streams only through it)."""
    extra: dict[str, Any] = {"HTTP_ACCEPT": accept} if accept is not None else {}
    # Not closed: closing fires request_finished, which would close the
    # test's database connection; the stream is never iterated anyway.
    response = Client().generic(method, target, **extra)
    return response.get("Content-Type", "").startswith("text/event-stream")


def _mismatches(cases: Sequence[Case]) -> list[tuple[Case, str, bool, bool]]:
    """The cases where the edge and the app disagree: (case, target seen, edge, app)."""
    seen = _node(cases)
    targets = [target for _, target in seen]
    _create_named_boards(targets)
    return [
        (case, target, handed_off, app)
        for case, (handed_off, target) in zip(cases, seen, strict=True)
        if handed_off != (app := _app_streams(case[0], target, case[2]))
    ]


def _create_named_boards(targets: Sequence[str]) -> None:
    """Make every well-formed board id in ``targets`` name a board.

    The edge cannot know which boards exist: it hands a well-formed id to
    Fanout, which passes the app's 404 through when there is no such board.
    The id is read by the app's own resolver and parse_id.
    """
    for target in targets:
        try:
            match = resolve(RequestFactory().get(target).path_info)
        except Resolver404:
            continue
        try:
            board_id = parse_id(match.kwargs.get("board_id"), field="board")
        except DomainError:
            continue
        Board.objects.get_or_create(pk=board_id, defaults={"name": "Edge"})


@pytest.mark.django_db
def test_edge_hands_off_exactly_the_requests_the_app_streams(
    published: Drain, settings: Any
) -> None:
    settings.GRIP_PROXIES = []
    board = leaderboard_services.board_create(name="Edge", players=["Ann", "Bob"])
    player_id = board.players.values_list("pk", flat=True).first()
    b = board.pk
    sse = "text/event-stream"
    cases: list[Case] = [
        ("GET", "/rooms/lobby/events/", None),
        ("GET", "/rooms/lobby/events/", sse),
        ("HEAD", "/rooms/lobby/events/", None),
        ("POST", "/rooms/lobby/events/", None),
        ("GET", "/rooms/lobby/messages/", sse),
        ("POST", "/rooms/lobby/messages/", None),
        ("GET", f"/boards/{b}/", sse),
        ("GET", f"/boards/{b}/", "text/html, text/event-stream;q=0.9"),
        ("GET", f"/boards/{b}/", "application/json"),
        ("GET", f"/boards/{b}/", None),
        ("GET", f"/boards/{b}/", "*/*"),
        ("POST", f"/boards/{b}/players/{player_id}/score-add/", sse),
        ("GET", f"/boards/{b}/players/{player_id}/", sse),
        ("GET", f"/leaderboard/{b}/", sse),
        ("GET", "/chat/lobby/", None),
        ("GET", "/healthz", None),
        # Every room name the app accepts, with or without the trailing slash.
        ("GET", "/rooms/lobby/events", None),
        ("GET", "/rooms/café/events/", None),
        ("GET", "/rooms/caf%C3%A9/events", None),
        ("GET", "/rooms/cafe%CC%81/events/", None),  # NFC: the same room as café
        ("GET", "/rooms/team.chat/events/", None),
        ("GET", "/rooms/with%20space/events/", None),
        ("GET", "/rooms/a:b/events/", None),
        ("GET", "/rooms/100%25/events/", None),
        ("GET", "/rooms/%FF/events/", None),  # not UTF-8: the room is "%FF"
        ("GET", "/rooms/%EF%BB%BFlobby/events/", None),  # U+FEFF: JS trims it, Python does not
        ("GET", "/rooms/%EF%BB%BF/events/", None),
        ("GET", "/rooms/lobby%E1%A0%8E/events/", None),  # U+180E: a space to neither
        # 100 code points in 200 UTF-16 units; 200 code points, 100 after NFC.
        ("GET", f"/rooms/{quote('😀' * 100)}/events/", None),
        ("GET", "/rooms/" + quote("e\u0301" * 100) + "/events/", None),
        # And no other.
        ("GET", f"/rooms/{quote('😀' * 101)}/events/", None),
        ("GET", "/rooms/%20lobby/events/", None),
        ("GET", "/rooms/lobby%C2%A0/events/", None),
        ("GET", "/rooms/a%2Fb/events/", None),
        ("GET", "/rooms/%2e%2e/events/", None),
        ("GET", "/rooms/a%E2%80%AEb/events/", None),
        ("GET", "/rooms/lobby/events//", None),
        # Boards: the id as parse_id reads it; Accept as Django reads it.
        ("GET", f"/boards/{b}", sse),
        ("HEAD", f"/boards/{''.join(f'%{ord(digit):X}' for digit in str(b))}/", sse),
        ("GET", f"/boards/{b}%0A/", sse),
        ("GET", f"/boards/0{b}/", sse),
        ("GET", f"/boards/{2**63}/", sse),
        ("GET", f"/boards/{b}/", "text/event-stream;q=0"),
        ("GET", f"/boards/{b}/", "TEXT/Event-Stream; charset=utf-8"),
        ("GET", f"/boards/{b}/", "text/event-stream;q=0, text/event-stream"),
        ("GET", f"/boards/{b}/?link=next", None),  # a recovery request, sent by a client
        ("GET", f"/boards/{b}/?link=next&link=x", None),
    ]
    seen = _node(cases)
    handed_off = [handed_off for handed_off, _ in seen]
    expected = [
        _app_streams(method, target, accept)
        for (method, _, accept), (_, target) in zip(cases, seen, strict=True)
    ]
    assert list(zip(cases, handed_off, strict=True)) == list(zip(cases, expected, strict=True))
    assert handed_off.count(True) == 24  # the cases above that stream


# Request shapes: each stream URL with and without its slash, and their neighbours.
ROOM_TEMPLATES = [
    "/rooms/{}/events/",
    "/rooms/{}/events",
    "/rooms/{}/events/",
    "/rooms/{}/events",
    "/rooms/{}/messages/",
    "/rooms/{}/events/x",
]
BOARD_TEMPLATES = [
    "/boards/{}/",
    "/boards/{}",
    "/boards/{}/",
    "/boards/{}",
    "/boards/{}/players/1/",
    "/leaderboard/{}/",
]
METHODS = ["GET", "GET", "GET", "HEAD", "POST", "OPTIONS"]
# Pieces of room names: the characters the rule is about (spaces Python strips
# and JS does not, and the reverse; controls; dots; slashes and escapes; NFC
# pairs; characters outside the BMP), in any order and number.
ROOM_PIECES = [
    *"aZ09_-.:;,+~!'()*@$&=[]|^`{}",
    "..",
    " ",
    "/",
    "%",
    "%2F",
    "%FF",
    "%2e",
    "?",
    "#",
    "\\",
    "é",
    "e\u0301",
    "\u1100\u1161",
    "\u0301",
    "\U0001f600",
    "中",
    "\u00a0",
    "\u3000",
    "\u2000",
    "\ufeff",
    "\u200b",
    "\u180e",
    "\t",
    "\n",
    "\x00",
    "\x1c",
    "\x7f",
    "\x85",
    "\u2028",
    "\u202e",
    "\u2066",
]
room_names = st.one_of(
    st.text(max_size=12),  # any code point but a surrogate
    st.lists(st.sampled_from(ROOM_PIECES), max_size=8).map("".join),
    # Around the 100-character limit, before and after NFC: a few pieces, repeated.
    st.builds(
        lambda pieces, times: "".join(pieces) * times,
        st.lists(st.sampled_from(ROOM_PIECES), min_size=1, max_size=3),
        st.integers(20, 110),
    ),
)


def _app_accepts_room(room: str) -> bool:
    try:
        validate_room(room)
    except DomainError:
        return False
    return True


def _encode(text: str, how: str) -> str:
    """``text`` as a path segment, in one of the ways clients write one."""
    if how == "raw":  # the URL parser encodes what it must
        return text
    if how == "every byte":
        return "".join(f"%{byte:02X}" for byte in text.encode())
    if how == "reverse":  # as Django's reverse() does
        return quote(text, safe="!$&'()*+,;=/~:@")
    encoded = quote(text, safe="")
    if how == "lowercase":
        return re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), encoded)
    return encoded


ENCODINGS = ["quote", "quote", "lowercase", "every byte", "reverse", "raw"]
room_segments = st.one_of(
    st.builds(
        _encode,
        # Half of them names the app accepts, found by its own rule.
        st.one_of(room_names.filter(_app_accepts_room), room_names),
        st.sampled_from(ENCODINGS),
    ),
    # Bytes that are not UTF-8, among characters that are.
    st.builds(
        lambda before, junk, after: quote(before.encode() + junk + after.encode(), safe=""),
        st.text(max_size=3),
        st.binary(min_size=1, max_size=4),
        st.text(max_size=3),
    ),
)
board_ids = st.one_of(
    st.integers(1, 2**63 - 1).map(str),
    st.integers(1, 2**63 - 1).map(str),
    st.integers(2**63 - 3, 2**63 + 3).map(str),
    st.sampled_from(["0", "-1", "01", "+1", " 1", "1 ", "1\n", "\u0661", "1.0", "1e3", "1_0", ""]),
    st.text(alphabet="0123456789 \n+-_.e", max_size=21),
    st.text(max_size=4),
)
board_segments = st.builds(_encode, board_ids, st.sampled_from(ENCODINGS))
queries = st.lists(
    st.sampled_from(
        [
            *["link=next", "link=next", "link=Next", "link=", "link", "x=1", "%6Cink=n%65xt"],
            *["link=next%FF", "link=next+", "Link=next", "x=1;link=next"],
        ]
    ),
    max_size=3,
).map(lambda params: "?" + "&".join(params) if params else "")
# Accept as clients write it. Django splits it on "," and reads each range's
# parameters with Python's email parser; the edge follows it for these forms.
MEDIA_RANGES = ["text/event-stream", "TEXT/Event-Stream", " text/event-stream "]
MEDIA_RANGES += ["text/html", "application/json", "*/*", "text/*", "text/event-streams", ""]
Q_VALUES = ["0", "0.0", "0.000", "0.0001", "0.0004", "0.0005", "1e-3", "1e-9", "-0", "+0"]
Q_VALUES += [".0", "0.", "0_0", "00", "1", "0.9", "2", "-1", "abc", "nan", "inf", ""]
Q_VALUES += ['"0"', "<0>", "'0'", " 0 "]
media_ranges = st.builds(
    lambda media_range, q, params: media_range + params + q,
    st.sampled_from(MEDIA_RANGES),
    st.one_of(
        st.just(""),
        st.builds("; {}={}".format, st.sampled_from(["q", "Q", " q "]), st.sampled_from(Q_VALUES)),
        st.just(";q"),
    ),
    st.sampled_from(["", ";charset=utf-8", "; level=1"]),
)
accepts = st.one_of(
    st.none(),
    st.just("text/event-stream"),  # what EventSource sends
    st.lists(media_ranges, min_size=1, max_size=3).map(", ".join),
)


@st.composite
def requests(draw: st.DrawFn) -> Case:
    if draw(st.booleans()):
        template, segment = draw(st.sampled_from(ROOM_TEMPLATES)), draw(room_segments)
    else:
        template, segment = draw(st.sampled_from(BOARD_TEMPLATES)), draw(board_segments)
    target = template.replace("{}", segment) + draw(queries)
    return draw(st.sampled_from(METHODS)), target, draw(accepts)


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=int(os.environ.get("EDGE_BATCHES", "12")),
    # The same batches on every run of `make test`; FUZZ_RANDOM=1 draws new ones.
    derandomize=os.environ.get("FUZZ_RANDOM", "") != "1",
    deadline=None,
    database=None,  # no .hypothesis/ directory left in the tree
    # No shrinking: the assertion lists the requests the edge gets wrong, and
    # shrinking a batch would ask the app again hundreds of times.
    phases=[Phase.explicit, Phase.generate],
    # Half the room names are drawn until the app accepts one (room_names.filter): how
    # many are refused on the way depends on the draws, which pytest-randomly reseeds.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@given(st.lists(requests(), min_size=30, max_size=50))
def test_edge_agrees_with_the_app_on_generated_requests(
    published: Drain, settings: Any, batch: list[Case]
) -> None:
    settings.GRIP_PROXIES = []
    assert _mismatches(batch) == []

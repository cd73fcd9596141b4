"""The limits through the real Pushpin: each client counted by the address Pushpin saw.

Pushpin (pushpin.conf: ``x_forwarded_for=truncate:0,append``) replaces whatever
X-Forwarded-For a client sends with the address it took the connection from,
and signs the request; the app trusts that header only on a signed request.
Two clients on two loopback addresses (127.0.0.1 and 127.0.0.2) are two clients.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from leaderboard.services import board_create
from ratelimit.models import Bucket
from tests.conftest import Stack


def client_from(address: str, base_url: str) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, timeout=10, transport=httpx.HTTPTransport(local_address=address)
    )


@pytest.fixture
def clients(limited_stack: Stack) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with (
        client_from("127.0.0.1", limited_stack.url) as ann,
        client_from("127.0.0.2", limited_stack.url) as bob,
    ):
        yield ann, bob


def post(client: httpx.Client, room: str, **headers: str) -> httpx.Response:
    return client.post(
        f"/rooms/{room}/messages/", data={"from": "Ann", "text": "hi"}, headers=headers
    )


def test_two_addresses_through_pushpin_are_two_clients(
    clients: tuple[httpx.Client, httpx.Client], room: str
) -> None:
    ann, bob = clients
    assert [post(ann, room).status_code for _ in range(4)] == [200, 200, 200, 429]
    refused = post(ann, room)
    assert refused.json()["field"] == "rate"
    assert 1 <= int(refused.headers["Retry-After"]) <= 20
    assert post(bob, room).status_code == 200
    assert sorted(Bucket.objects.values_list("scope", "client")) == [
        ("posts", "127.0.0.1"),
        ("posts", "127.0.0.2"),
    ]


def test_a_client_cannot_pick_its_bucket_with_x_forwarded_for(
    clients: tuple[httpx.Client, httpx.Client], limited_stack: Stack, room: str
) -> None:
    ann, _ = clients
    # Through Pushpin: the header Ann sends is replaced by her address.
    spoofed = [post(ann, room, x_forwarded_for=f"203.0.113.{n}") for n in range(4)]
    assert [r.status_code for r in spoofed] == [200, 200, 200, 429]
    # Straight to the app: no Grip-Sig, so the header is ignored; her peer address counts.
    with client_from("127.0.0.2", limited_stack.app.url) as direct:
        first = post(direct, room, x_forwarded_for="127.0.0.1")
        assert first.status_code == 200
        assert [
            post(direct, room, x_forwarded_for="203.0.113.9").status_code for _ in range(3)
        ] == [
            200,
            200,
            429,
        ]
    assert sorted(Bucket.objects.values_list("client", "tokens")) == [
        ("127.0.0.1", pytest.approx(0, abs=0.1)),
        ("127.0.0.2", pytest.approx(0, abs=0.1)),
    ]


def test_clicks_through_pushpin_are_limited(
    clients: tuple[httpx.Client, httpx.Client], limited_stack: Stack
) -> None:
    ann, bob = clients
    board = board_create(name="Board", players=["Cleo"])
    cleo = board.players.get()
    path = f"/boards/{board.pk}/players/{cleo.pk}/score-add"  # the original client's form
    assert [ann.post(path).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert bob.post(path).json() == {"id": cleo.pk, "name": "Cleo", "score": 4}

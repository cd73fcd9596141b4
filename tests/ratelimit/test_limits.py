"""The limits on the API's writes: posts and +1 clicks, 429 with Retry-After over them."""

from __future__ import annotations

import ast
import subprocess
import sys
from typing import Any

import pytest
from django.test import Client

from chat.models import Message
from devstack import ROOT
from leaderboard import services
from leaderboard.models import Board
from ratelimit import buckets
from ratelimit.models import Bucket
from ratelimit.rates import Rate, parse_rate
from tests.conftest import Drain, environ_without_settings
from tests.leaderboard.conftest import players_of, scores

pytestmark = pytest.mark.django_db

MESSAGES = "/rooms/lobby/messages/"
# 3 at once, then one every 20 s.
THREE_A_MINUTE = Rate(burst=3, per_second=3 / 60)
T0 = 1_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(buckets, "clock", fake)
    return fake


@pytest.fixture
def board(published: Drain) -> Board:
    return services.board_create(name="Board", players=["Ann"])


@pytest.fixture
def limits(settings: Any, clock: Clock) -> dict[str, Rate | None]:
    settings.RATE_LIMITS = {"posts": THREE_A_MINUTE, "clicks": THREE_A_MINUTE}
    return settings.RATE_LIMITS


def post(path: str = MESSAGES, *, peer: str = "192.0.2.1", **headers: str) -> Any:
    return Client(REMOTE_ADDR=peer).post(path, {"from": "Ann", "text": "hi"}, headers=headers)


def test_posts_over_the_limit_get_429_with_retry_after(limits: Any, published: Drain) -> None:
    assert [post().status_code for _ in range(3)] == [200, 200, 200]
    refused = post()
    assert refused.status_code == 429
    assert refused["Retry-After"] == "20"
    assert refused.json() == {
        "error": "too many posts; try again in 20 s",
        "field": "rate",
        "retry_after": 20,
    }
    assert Message.objects.count() == 3


def test_retry_after_counts_down_and_the_bucket_refills(
    limits: Any, clock: Clock, published: Drain
) -> None:
    for _ in range(3):
        post()
    clock.now += 12.5
    assert post()["Retry-After"] == "8"  # 7.5 s to go, rounded up
    clock.now += 7.5
    assert post().status_code == 200
    assert post()["Retry-After"] == "20"


def test_each_client_has_its_own_bucket(limits: Any, published: Drain) -> None:
    for _ in range(3):
        post(peer="192.0.2.1")
    assert post(peer="192.0.2.1").status_code == 429
    assert post(peer="192.0.2.2").status_code == 200
    assert sorted(Bucket.objects.values_list("scope", "client")) == [
        ("posts", "192.0.2.1"),
        ("posts", "192.0.2.2"),
    ]


def test_reading_is_never_charged(limits: Any) -> None:
    for _ in range(10):
        assert Client().get(MESSAGES).status_code == 200
    assert not Bucket.objects.exists()


def test_an_idempotent_replay_is_not_charged_again(limits: Any, published: Drain) -> None:
    first = post(idempotency_key="k-1")
    replays = [post(idempotency_key="k-1") for _ in range(5)]
    assert [r["Idempotent-Replayed"] for r in replays] == ["true"] * 5
    assert [post().status_code for _ in range(3)] == [200, 200, 429]
    assert first.status_code == 200
    assert Message.objects.count() == 3


def test_a_refused_keyed_write_keeps_no_key_and_its_retry_is_stored(
    limits: Any, clock: Clock, published: Drain
) -> None:
    for _ in range(3):
        post()
    assert post(idempotency_key="k-2").status_code == 429
    clock.now += 20
    retried = post(idempotency_key="k-2")
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried
    assert Message.objects.count() == 4


def test_clicks_are_limited_on_both_forms_of_the_original_route(
    limits: Any, board: Board, published: Drain
) -> None:
    ann = players_of(board)["Ann"]
    path = f"/boards/{board.pk}/players/{ann.pk}/score-add"
    answers = [post(f"{path}/"), post(path), post(f"{path}/"), post(path)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["error"] == "too many clicks; try again in 20 s"
    assert scores(board)["Ann"] == 3
    # Posts and clicks are counted apart.
    assert post().status_code == 200


def test_a_limit_turned_off_admits_everything(settings: Any, published: Drain) -> None:
    settings.RATE_LIMITS = {"posts": None, "clicks": None}
    assert {post().status_code for _ in range(20)} == {200}
    assert not Bucket.objects.exists()


@pytest.fixture(scope="module")
def default_limits() -> dict[str, Rate | None]:
    """chatdemo.settings' RATE_LIMITS with no RATE_LIMIT_* variable set (the tests set them)."""
    env = {k: v for k, v in environ_without_settings().items() if not k.startswith("RATE_LIMIT_")}
    env.update({"DJANGO_SETTINGS_MODULE": "chatdemo.settings", "DJANGO_DEBUG": "1"})
    code = "from django.conf import settings; print({k: str(v) for k, v in settings.RATE_LIMITS.items()})"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    written = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    return {scope: parse_rate(value) for scope, value in written.items()}


def test_the_defaults_never_refuse_a_person_at_human_pace(
    settings: Any,
    default_limits: dict[str, Rate | None],
    clock: Clock,
    board: Board,
    published: Drain,
) -> None:
    """A dozen clicks a second for a minute, and ten messages at once then one every two
    seconds, are all taken under the default limits."""
    assert default_limits == {"posts": Rate(10, 1.0), "clicks": Rate(30, 15.0)}
    settings.RATE_LIMITS = default_limits
    ann = players_of(board)["Ann"]
    click = f"/boards/{board.pk}/players/{ann.pk}/score-add/"
    statuses = set()
    for _ in range(60):
        for _ in range(12):
            statuses.add(post(click).status_code)
            clock.now += 1 / 12
    assert statuses == {200}
    assert {post().status_code for _ in range(10)} == {200}
    for _ in range(20):
        clock.now += 2
        statuses.add(post().status_code)
    assert statuses == {200}

"""A limit's value in the environment: N/<period> or off; anything else stops start-up."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from ratelimit.rates import Rate, env_rate, parse_rate


@pytest.mark.parametrize(
    ("value", "rate"),
    [
        ("30/2s", Rate(burst=30, per_second=15.0)),
        ("10/10s", Rate(burst=10, per_second=1.0)),
        ("100/m", Rate(burst=100, per_second=100 / 60)),
        ("6/1h", Rate(burst=6, per_second=6 / 3600)),
        (" 20 / 10S ", Rate(burst=20, per_second=2.0)),
        ("off", None),
        ("OFF", None),
    ],
)
def test_parse_rate_reads_burst_and_period(value: str, rate: Rate | None) -> None:
    assert parse_rate(value) == rate


@pytest.mark.parametrize("value", ["", "10", "10/", "10/0s", "0/10s", "-1/10s", "10/10", "1.5/s"])
def test_parse_rate_refuses_anything_else(value: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(value)


def test_env_rate_takes_the_default_when_unset_or_blank() -> None:
    assert env_rate("RATE_LIMIT_POSTS", "10/10s", environ={}) == Rate(10, 1.0)
    assert env_rate("RATE_LIMIT_POSTS", "10/10s", environ={"RATE_LIMIT_POSTS": " "}) == Rate(
        10, 1.0
    )
    assert env_rate("RATE_LIMIT_POSTS", "10/10s", environ={"RATE_LIMIT_POSTS": "off"}) is None


def test_env_rate_names_the_variable_it_refuses() -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        env_rate("RATE_LIMIT_CLICKS", "30/2s", environ={"RATE_LIMIT_CLICKS": "lots"})
    assert str(error.value) == (
        "RATE_LIMIT_CLICKS must be 'off' or N/<period>, such as 10/10s (N requests at once, "
        "refilled over the period; the period in s, m or h); got 'lots'"
    )


def test_rate_reads_back_as_written() -> None:
    assert str(Rate(burst=30, per_second=15.0)) == "30/2s"

"""The README's configuration table and .env.example list exactly the variables the settings read."""

from __future__ import annotations

import re

from devstack import ROOT

# os.environ.get and the env_* parsers (base.env's, ratelimit.rates.env_rate).
READS = re.compile(r"""(?:os\.environ\.get|env_[a-z]+)\(\s*"([A-Z][A-Z0-9_]+)\"""")


def _read_by_settings() -> set[str]:
    return set(READS.findall((ROOT / "chatdemo" / "settings.py").read_text()))


def _readme_table() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, flags=re.MULTILINE))


def _env_example() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_settings_read_the_variables_we_expect() -> None:
    """Guards the regex above: it must find the variables we know are read."""
    assert {
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "GRIP_URL",
        "GRIP_VERIFY_KEY",
    } <= _read_by_settings()


def test_readme_configuration_table_matches_settings() -> None:
    assert _readme_table() == _read_by_settings()


def test_env_example_matches_settings() -> None:
    assert _env_example() == _read_by_settings()

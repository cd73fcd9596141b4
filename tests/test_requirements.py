"""The hashed locks in requirements/ agree with pyproject.toml (no network needed).

``make lock`` writes them with pip-compile; these fail when pyproject.toml changed
and the locks were not written again, or when a lock was edited by hand.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from devstack import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
DEV_LOCK = ROOT / "requirements" / "dev.txt"
# How pip-compile's annotations name pyproject.toml's dependencies and its build backend.
FROM_PYPROJECT = "chatdemo (pyproject.toml)"
FROM_BUILD_SYSTEM = "chatdemo (pyproject.toml::build-system.requires)"


@dataclass(frozen=True)
class Pin:
    version: Version
    via: frozenset[str]


def read_lock(path: Path) -> dict[NormalizedName, Pin]:
    """Each package a lock pins, with what pulled it in; asserts every line is hashed."""
    pins: dict[NormalizedName, Pin] = {}
    name: NormalizedName | None = None
    for line in path.read_text().replace("\\\n", " ").splitlines():
        if line.startswith(" ") and line.strip().startswith("#"):  # "# via ..." of `name`
            assert name is not None, line
            via = line.strip().removeprefix("#").strip().removeprefix("via").strip()
            if via:
                pins[name] = Pin(pins[name].version, pins[name].via | {via})
        elif line.strip() and not line.startswith("#"):
            spec, *hashes = line.split()
            assert hashes, f"{path.name}: {spec} has no hash"
            assert all(h.startswith("--hash=sha256:") for h in hashes), spec
            requirement = Requirement(spec)
            [pinned] = requirement.specifier
            assert pinned.operator == "==", spec
            assert not requirement.extras and requirement.marker is None, spec
            name = canonicalize_name(requirement.name)
            assert name not in pins, f"{path.name} pins {name} twice"
            pins[name] = Pin(Version(pinned.version), frozenset())
        else:
            name = None
    return pins


def _applies(requirement: Requirement, extra: str = "") -> bool:
    return requirement.marker is None or requirement.marker.evaluate({"extra": extra})


def _runtime_requirements() -> list[Requirement]:
    requirements = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    return [r for r in requirements if _applies(r)]


def _dev_requirements() -> list[Requirement]:
    requirements = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]]
    return [r for r in requirements if _applies(r)]


def _build_requirements() -> list[Requirement]:
    return [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]


def _extras_requirements(requirement: Requirement) -> list[Requirement]:
    """What the extras of a dependency (``psycopg[binary,pool]``) add, from its installed
    metadata: the locks strip extras, so these must be pinned on their own."""
    found = []
    for text in metadata.requires(requirement.name) or []:
        added = Requirement(text)
        if not _applies(added) and any(_applies(added, e) for e in requirement.extras):
            found.append(added)
    return found


def _unmet(requirements: list[Requirement], pins: dict[NormalizedName, Pin]) -> list[str]:
    """Each requirement that the pins leave out or pin outside its bounds."""
    unmet = []
    for requirement in requirements:
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            unmet.append(f"{requirement}: not in the lock")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            unmet.append(f"{requirement}: the lock pins {pin.version}")
        else:
            unmet.extend(_unmet(_extras_requirements(requirement), pins))
    return unmet


def _direct(pins: dict[NormalizedName, Pin], source: str) -> set[NormalizedName]:
    return {name for name, pin in pins.items() if source in pin.via}


def _names(requirements: list[Requirement]) -> set[NormalizedName]:
    return {canonicalize_name(r.name) for r in requirements}


STALE = "pyproject.toml and requirements/ disagree: run `make lock`"


def test_runtime_lock_pins_every_dependency_within_its_bounds() -> None:
    pins = read_lock(RUNTIME_LOCK)
    assert _unmet(_runtime_requirements(), pins) == [], STALE
    assert _direct(pins, FROM_PYPROJECT) == _names(_runtime_requirements()), STALE


def test_dev_lock_pins_dependencies_dev_tools_and_the_build_backend_within_their_bounds() -> None:
    pins = read_lock(DEV_LOCK)
    wanted = _runtime_requirements() + _dev_requirements() + _build_requirements()
    assert _unmet(wanted, pins) == [], STALE
    direct = _runtime_requirements() + _dev_requirements()
    assert _direct(pins, FROM_PYPROJECT) == _names(direct), STALE
    assert _direct(pins, FROM_BUILD_SYSTEM) == _names(_build_requirements()), STALE


def test_dev_lock_pins_the_runtime_packages_as_the_runtime_lock_does() -> None:
    """So `make test` tests the versions the image runs."""
    runtime = read_lock(RUNTIME_LOCK)
    dev = read_lock(DEV_LOCK)
    assert {name: dev[name].version for name in runtime if name in dev} == {
        name: pin.version for name, pin in runtime.items()
    }


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda path: path.name)
def test_lock_was_compiled_for_the_python_that_ci_and_the_image_run(lock: Path) -> None:
    """pip-compile drops what a marker leaves out on its own Python: a lock compiled on
    another one can miss a package that 3.11 needs."""
    assert "# This file is autogenerated by pip-compile with Python 3.11\n" in lock.read_text()
    assert (ROOT / "Dockerfile").read_text().count("\nFROM python:3.11-") == 1

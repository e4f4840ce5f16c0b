"""The lock files pin every dependency pyproject.toml names, within its range, with hashes, and
the image and `make setup` install from them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ \\]+) \\$", re.MULTILINE)


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    pins: dict[str, str] = {canonicalize_name(name): version for name, version in PIN.findall(text)}
    # every pinned requirement carries hashes (pip --require-hashes refuses the file otherwise)
    blocks = [b for b in re.split(r"\n(?=[A-Za-z0-9])", text) if PIN.match(b)]
    assert len(blocks) == len(pins), lock
    assert all("--hash=sha256:" in b for b in blocks), lock
    assert "file://" not in text
    assert "clevertap-consumer @" not in text
    return pins


@pytest.mark.parametrize(
    ("lock", "groups"),
    [
        ("requirements.lock", ()),
        ("requirements-msk.lock", ("msk",)),
        ("requirements-dev.lock", ("dev",)),
    ],
)
def test_lock_pins_every_direct_dependency_within_its_range(lock: str, groups: tuple[str, ...]) -> None:
    pins = _pins(lock)
    wanted = [Requirement(r) for r in PYPROJECT["dependencies"]]
    for group in groups:
        wanted += [Requirement(r) for r in PYPROJECT["optional-dependencies"][group]]
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"{lock} lacks {req.name}: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {req.name}=={pins[name]}, outside {req.specifier}: run `make lock`"
        )


def test_runtime_lock_is_the_dev_lock_minus_dev_tools() -> None:
    """The tests run the versions the image ships."""
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    for name, version in runtime.items():
        assert dev.get(name) == version, f"{name}: image {version}, tests {dev.get(name)}: run `make lock`"


def test_setup_and_image_install_from_the_locks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert '--require-hashes -r "requirements${EXTRAS:+-$EXTRAS}.lock"' in dockerfile
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"!requirements.lock", "!requirements-msk.lock"} <= set(ignore)

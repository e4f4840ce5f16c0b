"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dev import promtool as promtool_tool
from tests.support.fake_clevertap import FakeCleverTapProcess, run_fake_clevertap, start_fake_clevertap

pytest_plugins = ["tests.support.kafka", "tests.support.service"]


@pytest.fixture(scope="session")
def promtool() -> Path:
    """Prometheus's promtool, fetched from Debian's package on first use (dev/promtool.py)."""
    return promtool_tool.ensure("promtool")


@pytest.fixture(scope="session")
def fake_clevertap_session() -> Iterator[FakeCleverTapProcess]:
    """One fake CleverTap process for the session, with `tests.support.fake_clevertap.DEFAULT_ACCOUNTS`."""
    with run_fake_clevertap() as fake:
        yield fake


@pytest.fixture
def fake_clevertap(fake_clevertap_session: FakeCleverTapProcess) -> FakeCleverTapProcess:
    """The session's fake, reset: no records, no stats, no faults."""
    fake_clevertap_session.reset()
    return fake_clevertap_session


@pytest.fixture
def start_fake() -> Iterator[Callable[..., FakeCleverTapProcess]]:
    """A factory for a fake with its own options (accounts, any_account, max_concurrent, faults),
    stopped when the test ends."""
    started: list[FakeCleverTapProcess] = []

    def start(**options: Any) -> FakeCleverTapProcess:
        fake = start_fake_clevertap(**options)
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()

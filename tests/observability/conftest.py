"""Fixtures for the observability tests: promtool, and the health server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consumer.health import Health, HealthServer, serve
from dev import promtool as promtool_tool

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def promtool() -> Path:
    """Prometheus's promtool, fetched from Debian's package on first use (dev/promtool.py)."""
    return promtool_tool.ensure("promtool")


@pytest.fixture
def health() -> Health:
    return Health(stall_after=60.0, publish=False)


@pytest.fixture
def server(health: Health) -> Iterator[HealthServer]:
    srv = serve(health, "127.0.0.1", 0)
    try:
        yield srv
    finally:
        srv.close()

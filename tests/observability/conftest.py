"""Fixtures for the observability tests: promtool, and the health server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumer.health import Health, HealthServer, serve

from .sample import exercise_every_metric

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture
def exported_names(server: HealthServer) -> set[str]:
    """Every sample name a real scrape of /metrics carries once every metric has a value,
    suffixes included (`_total`, `_bucket`, `_sum`, `_count`, `_info`)."""
    exercise_every_metric()
    text = httpx.get(f"{server.url}/metrics", timeout=5.0).text
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}

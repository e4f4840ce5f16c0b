"""Fixtures for the codec tests: a real Schema Registry over HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.schema_registry import SchemaRegistryServer, running_registry


@pytest.fixture
def registry() -> Iterator[SchemaRegistryServer]:
    with running_registry() as server:
        yield server

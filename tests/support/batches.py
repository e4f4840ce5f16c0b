"""Batches as the batch stage makes them, for tests of the stages after it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr

from consumer.batch import Batch, Batcher
from consumer.contracts import Target
from consumer.offsets import Entry
from consumer.transform import Record


def target(url: str, account: str, passcode: str) -> Target:
    return Target(account, url, SecretStr(passcode))


def event(identity: str, **fields: Any) -> dict[str, Any]:
    """A valid CleverTap event record."""
    record = {"type": "event", "identity": identity, "ts": 1_700_000_000, "evtName": "Product Viewed"}
    return record | {"evtData": {"sku": identity}} | fields


def make_batch(
    to: Target, records: Sequence[dict[str, Any]], *, topic: str = "events", first_offset: int = 0
) -> Batch:
    """One upload batch holding `records` in order, each from its own Kafka message."""
    batcher = Batcher(max_records=1000, max_bytes=8 * 1024 * 1024, linger_s=3600)
    now_ms = int(time.time() * 1000)
    closed: list[Batch] = []
    for i, record in enumerate(records):
        entry = Entry(topic, 0, first_offset + i, None, b"original", [], now_ms)
        closed += batcher.add(to, Record("event", dict(record)), entry, now=0.0)
    closed += batcher.flush()
    assert len(closed) == 1, "records did not fit one batch"
    return closed[0]

"""Poison pills through the running service: each ends in the DLQ with its precise reason, the
service keeps running, and the partition's offsets reach the end (nothing stalls)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest
from confluent_kafka import Producer

from consumer.dlq import TRUNCATED_HEADER
from consumer.source import message_headers
from tests.support.poison import (
    ID_HEADER,
    ONE_MB,
    Poison,
    deep_order,
    encode_deep,
    garbage,
    with_deep_destination,
)
from tests.support.service import DESTINATIONS, Bed

pytestmark = pytest.mark.kafka


def produce_raw(bed: Bed, records: Sequence[tuple[str, bytes | None]]) -> None:
    """(id, value) records as another producer would write them, up to the broker's 1 MB."""
    producer = Producer({"bootstrap.servers": bed.kafka.bootstrap, "message.max.bytes": 1_048_000})
    errors: list[str] = []
    for rid, value in records:
        producer.produce(
            bed.topic,
            value,
            rid.encode(),
            headers=[(ID_HEADER, rid.encode())],
            on_delivery=lambda err, _m: errors.append(str(err)) if err else None,
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors


def test_deep_nesting_and_one_megabyte_values_are_dead_lettered_not_crash_loops(bed: Bed) -> None:
    rng = random.Random(5)
    bed.destinations_file.write_text(json.dumps(with_deep_destination(DESTINATIONS)))
    poison = [
        Poison("deep-1", "deep", encode_deep(deep_order("dest-rs", "u1")), "transform", "too_deep"),
        Poison(
            "deep-2", "deep", encode_deep(deep_order("dest-rs", "u2", depth=600)), "transform", "too_deep"
        ),
        Poison("big-1", "one_mb", garbage(rng, ONE_MB), "decode", "avro_error"),
    ]
    good = [
        {"type": "track", "event": "Signed Up", "userId": f"g{i}", "destinationId": "dest-one"}
        for i in range(5)
    ]
    produce_raw(bed, [(p.id, p.value) for p in poison])
    bed.produce(good)
    service = bed.service()
    service.wait_ready()
    bed.wait_committed_to_end()
    assert service.running, "a poison pill must cost one record, never the process"
    assert bed.delivered_count() == 5

    dead = {dict(message_headers(m))[ID_HEADER]: m for m in bed.dead_letters(len(poison))}
    for p in poison:
        headers = dict(message_headers(dead[p.id.encode()]))
        assert (headers["dlq.stage"], headers["dlq.reason"]) == (p.stage.encode(), p.reason.encode())
    deep = (dict(message_headers(dead[b"deep-1"]))["dlq.message"] or b"").decode()
    assert "254 levels" in deep
    assert "Recursion limit reached" in deep
    big = dead[b"big-1"]
    assert dict(message_headers(big))[TRUNCATED_HEADER] == str(ONE_MB).encode()
    assert len(big.value() or b"") < ONE_MB
    assert service.terminate() == 0
    log = service.log_path.read_text()
    assert "Traceback" not in log
    assert "DLQ copy too large" in log

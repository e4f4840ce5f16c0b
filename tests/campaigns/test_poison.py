"""1% poison input mixed into normal events, through the running service in Schema Registry
mode and the real broker: every good event reaches the fake CleverTap, every poison record is in
the DLQ with its stage and precise reason, nothing is lost and no partition stalls.

Poison kinds: garbage bytes, truncated Avro, unknown schema ids, unknown destinations, ~1 MB
values, tombstones and deeply nested products. Reconciled by id: good events by
`properties.eid` at the fake, poison records by their `event-id` header in the DLQ.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from consumer.codec import DecodeError, Decoder, Encoder, Registry
from consumer.source import message_headers
from tests.support.campaign import accounts, delivered_ids, destinations, events
from tests.support.fake_clevertap import FakeCleverTapProcess
from tests.support.kafka import KafkaBed
from tests.support.poison import ID_HEADER, ONE_MB, Poison, deep_order, encode_deep
from tests.support.schema_registry import SchemaRegistryServer, running_registry
from tests.support.service import Bed

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

N_DESTINATIONS = 2
GOOD = 5000
DEEP = {"id": "dest-rs", "accountId": "ACC-0", "passcode": "pass-0", "profile": "rudderstack"}
KINDS = ("garbage", "truncated", "unknown_schema_id", "unknown_destination", "one_mb", "tombstone", "deep")


@pytest.fixture
def registry() -> Iterator[SchemaRegistryServer]:
    with running_registry() as server:
        yield server


@pytest.fixture
def poison_bed(
    kafka: KafkaBed,
    start_fake: Callable[..., FakeCleverTapProcess],
    new_topic: Callable[..., str],
    tmp_path: Path,
) -> Iterator[Bed]:
    fake = start_fake(accounts=accounts(N_DESTINATIONS))
    b = Bed(kafka, fake, tmp_path, new_topic(partitions=4), new_topic(suffix="-dlq"))
    files = destinations(N_DESTINATIONS)
    b.destinations_file.write_text(json.dumps({"destinations": [*files["destinations"], DEEP]}))
    try:
        yield b
    finally:
        b.close()


def _poison(rng: random.Random, encoder: Encoder, decoder: Decoder, n: int) -> list[Poison]:
    prefix = encoder.encode({"type": "track"})[:5]  # magic byte and the registered schema id
    out = []
    for i in range(n):
        kind, pid = KINDS[i % len(KINDS)], f"poison-{i}"
        ok = {"type": "track", "event": "Signed Up", "userId": f"p{i}", "destinationId": "dest-0"}
        if kind == "garbage":
            p = Poison(
                pid, kind, b"\xff" + rng.randbytes(rng.randint(4, 300)), "decode", "not_confluent_framed"
            )
        elif kind == "truncated":
            value = encoder.encode({**ok, "properties": {"blob": "x" * 300}})
            p = Poison(pid, kind, value[: len(value) // 2], "decode", "avro_error")
        elif kind == "unknown_schema_id":
            body = encoder.encode(ok)[5:]
            p = Poison(
                pid, kind, b"\x00" + (900_000 + i).to_bytes(4, "big") + body, "decode", "unknown_schema_id"
            )
        elif kind == "unknown_destination":
            p = Poison(
                pid,
                kind,
                encoder.encode({**ok, "destinationId": f"nowhere-{i}"}),
                "route",
                "unknown_destination",
            )
        elif kind == "one_mb":
            p = Poison(pid, kind, prefix + b"\xff" * ONE_MB, "decode", "avro_error")
        elif kind == "tombstone":
            p = Poison(pid, kind, None, "decode", "empty_value")
        else:
            p = Poison(
                pid, kind, prefix + encode_deep(deep_order("dest-rs", f"p{i}")), "transform", "too_deep"
            )
        if p.value is not None and p.stage == "decode" and p.reason != "unknown_schema_id":
            with pytest.raises(DecodeError) as caught:  # the record really is what it claims
                decoder.decode(p.value)
            assert caught.value.reason == p.reason
        out.append(p)
    return out


def test_one_percent_poison_all_dead_lettered_precisely_nothing_lost(
    poison_bed: Bed, registry: SchemaRegistryServer
) -> None:
    bed = poison_bed
    started = time.monotonic()
    rng = random.Random(11)
    encoder = Encoder(Registry.connect(registry.url), bed.topic)
    decoder = Decoder(Registry.connect(registry.url))
    good = events(GOOD, N_DESTINATIONS)
    poison = _poison(rng, encoder, decoder, GOOD // 100)
    records: list[tuple[str, bytes | None, bytes | None]] = [
        (f"good-{e['properties']['eid']}", str(e["userId"]).encode(), encoder.encode(e)) for e in good
    ]
    for p in poison:
        records.insert(rng.randrange(len(records) + 1), (p.id, p.id.encode(), p.value))
    producer = Producer(
        {"bootstrap.servers": bed.kafka.bootstrap, "message.max.bytes": 1_048_000, "linger.ms": 5}
    )
    for rid, key, value in records:
        producer.produce(bed.topic, value, key, headers=[(ID_HEADER, rid.encode())])
        producer.poll(0)
    assert producer.flush(60) == 0

    service = bed.service(SCHEMA_REGISTRY_URL=registry.url, LOG_LEVEL="WARNING")
    service.wait_ready()
    bed.wait_committed_to_end(timeout=120)  # every partition, while the service runs: no stall
    assert service.running

    delivered = delivered_ids(bed.fake)
    dlq = bed.dead_letters(len(poison), timeout=30)
    found: dict[str, tuple[str, str, str]] = {}
    for m in dlq:
        h = dict(message_headers(m))
        found[(h[ID_HEADER] or b"").decode()] = tuple(  # type: ignore[assignment]
            (h.get(k) or b"").decode() for k in ("dlq.stage", "dlq.reason", "dlq.message")
        )
    wrong = [
        (p.id, p.kind, found.get(p.id)) for p in poison if found.get(p.id, ("",))[:2] != (p.stage, p.reason)
    ]
    lost_good = [i for i in range(GOOD) if i not in delivered]
    duplicates = sum(n - 1 for n in delivered.values() if n > 1)
    assert service.terminate() == 0
    summary = {
        "events": len(records),
        "good": GOOD,
        "poison": len(poison),
        "delivered": len(delivered),
        "dead_lettered": len(found),
        "lost": len(lost_good) + sum(1 for p in poison if p.id not in found),
        "wrong_reason": len(wrong),
        "duplicates": duplicates,
        "seconds": round(time.monotonic() - started, 1),
    }
    print("CAMPAIGN poison: " + json.dumps(summary))
    assert lost_good == [], lost_good[:10]
    assert wrong == [], wrong[:5]
    assert len(found) == len(poison), "nothing but the poison is dead-lettered"
    assert all(msg for _, _, msg in found.values()), "each says why"
    assert "Traceback" not in service.log_path.read_text()

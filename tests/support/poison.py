"""Poison records, built the way a hostile or broken producer would write them, each with the
DLQ stage and reason the service must give it. Shared by the poison tests and the campaign.

Every poison record carries an `event-id` header (the DLQ keeps original headers), so a run is
reconciled by id: each good event at the fake CleverTap, each poison record in the DLQ.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastavro import schemaless_writer

from consumer.codec import DecodeError, Decoder, Encoder, to_envelope
from consumer.codec import schema as envelope_schema

ID_HEADER = "event-id"
#: Big enough that the DLQ copy plus its headers exceeds librdkafka's default message.max.bytes
#: (1,000,000), small enough for the broker's default 1,048,588 on the source topic.
ONE_MB = 1_000_100


@dataclass(frozen=True, slots=True)
class Poison:
    id: str
    kind: str
    value: bytes | None
    stage: str
    reason: str


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


#: A destination whose profile keeps nested product values as they are (the default profile
#: flattens them), so a deeply nested product reaches the JSON writer.
DEEP_DESTINATION: dict[str, Any] = {
    "id": "dest-rs",
    "accountId": "ACC-ONE",
    "passcode": "pass-one",
    "profile": "rudderstack",
}


def with_deep_destination(destinations: Mapping[str, Any]) -> dict[str, Any]:
    return {"destinations": [*destinations["destinations"], DEEP_DESTINATION]}


def deep_order(destination_id: str, user: str, depth: int = 300) -> dict[str, Any]:
    """An Order Completed whose products nest `depth` levels: decodes, transforms (rudderstack
    profile), cannot be serialised for CleverTap (orjson stops at 254 levels)."""
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": user,
        "destinationId": destination_id,
        "properties": {
            "order_id": "o-1",
            "revenue": 10,
            "products": [{"product_id": "p1", "x": nested(depth)}],
        },
    }


def encode_deep(message: Mapping[str, Any]) -> bytes:
    """Our Encoder refuses nesting orjson cannot write; the standard library writes it, as
    another producer would."""
    shallow = {k: v for k, v in message.items() if k != "properties"}
    envelope = to_envelope(shallow)
    envelope["properties"] = json.dumps(message["properties"])
    out = io.BytesIO()
    schemaless_writer(out, envelope_schema.PARSED, envelope)
    return out.getvalue()


def garbage(rng: random.Random, size: int) -> bytes:
    """Bytes that do not decode as the bundled schema (checked with the real decoder)."""
    decoder = Decoder()
    while True:
        value = b"\xff" + rng.randbytes(size - 1)
        try:
            decoder.decode(value)
        except DecodeError as exc:
            if exc.reason == "avro_error":
                return value


def poison_records(
    rng: random.Random, encoder: Encoder, n: int, destination_id: str, prefix: str = "p"
) -> list[Poison]:
    """`n` poison records cycling through every kind (plain Avro mode)."""
    out: list[Poison] = []
    for i in range(n):
        pid = f"{prefix}{i}"
        kind = KINDS[i % len(KINDS)]
        good = {"type": "track", "event": "Signed Up", "userId": f"pu{i}", "destinationId": destination_id}
        if kind == "garbage":
            out.append(Poison(pid, kind, garbage(rng, rng.randint(8, 200)), "decode", "avro_error"))
        elif kind == "truncated":
            value = encoder.encode({**good, "properties": {"blob": "x" * 200}})
            out.append(Poison(pid, kind, value[: len(value) // 2], "decode", "avro_error"))
        elif kind == "unknown_destination":
            value = encoder.encode({**good, "destinationId": f"nowhere-{i}"})
            out.append(Poison(pid, kind, value, "route", "unknown_destination"))
        elif kind == "one_mb":
            out.append(Poison(pid, kind, garbage(rng, ONE_MB), "decode", "avro_error"))
        elif kind == "tombstone":
            out.append(Poison(pid, kind, None, "decode", "empty_value"))
        elif kind == "deep":
            out.append(
                Poison(
                    pid,
                    kind,
                    encode_deep(deep_order(DEEP_DESTINATION["id"], f"pu{i}")),
                    "transform",
                    "too_deep",
                )
            )
    return out


KINDS = ("garbage", "truncated", "unknown_destination", "one_mb", "tombstone", "deep")

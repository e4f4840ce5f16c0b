"""Message → Kafka value bytes, for `produce`, tests and benchmarks.

Registry mode registers schemas/event.avsc under `<topic>-value` (TopicNameStrategy, the
Confluent default) once and prefixes every body with its id, byte-identical to what
confluent-kafka's `AvroSerializer` writes; plain mode writes the schemaless Avro body alone.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from confluent_kafka.schema_registry import Schema
from fastavro import schemaless_writer

from . import schema as envelope_schema
from .envelope import to_envelope
from .registry import Registry, RegistrySettings


class RegistrationError(RuntimeError):
    """The schema could not be registered; the message names the registry, never its credentials."""


def value_subject(topic: str) -> str:
    """The subject a topic's value schemas live under (TopicNameStrategy)."""
    return f"{topic}-value"


class Encoder:
    """Encodes messages for one topic in the project's schema and wire format."""

    def __init__(self, registry: Registry | None = None, topic: str | None = None) -> None:
        self.registry = registry
        self.schema_id: int | None = None
        self._prefix = b""
        if registry is not None:
            if not topic:
                raise ValueError("registry mode needs the topic: the subject is <topic>-value")
            subject = value_subject(topic)
            try:
                self.schema_id = int(
                    registry.client.register_schema(subject, Schema(envelope_schema.schema_text(), "AVRO"))
                )
            except Exception as exc:
                failure = registry.failure(exc, f"registering the event schema under subject {subject!r}")
                raise RegistrationError(failure.message) from None
            self._prefix = b"\x00" + self.schema_id.to_bytes(4, "big")

    @classmethod
    def from_settings(cls, settings: RegistrySettings, topic: str) -> Encoder:
        """Registry mode (registering now) when SCHEMA_REGISTRY_URL is set, plain Avro otherwise."""
        return cls(Registry.from_settings(settings), topic)

    def close(self) -> None:
        if self.registry is not None:
            self.registry.close()

    def encode(self, message: Mapping[str, Any]) -> bytes:
        """The Kafka value for one RudderStack message (`EnvelopeError` if it is not a JSON object)."""
        return self.encode_envelope(to_envelope(message))

    def encode_envelope(self, envelope: Mapping[str, Any]) -> bytes:
        out = io.BytesIO()
        out.write(self._prefix)
        schemaless_writer(out, envelope_schema.PARSED, envelope)
        return out.getvalue()

"""Why a Kafka value could not become a message, in terms the pipeline can act on."""

from __future__ import annotations

from typing import Final, Literal, get_args

DecodeReason = Literal[
    "empty_value",
    "not_confluent_framed",
    "unknown_schema_id",
    "unsupported_schema",
    "incompatible_schema",
    "avro_error",
    "bad_json_field",
    "invalid_json",
    "json_not_object",
    "registry_unavailable",
    "registry_error",
]

#: Every reason, for pre-registering metric labels and checking DLQ headers.
DECODE_REASONS: Final[tuple[DecodeReason, ...]] = get_args(DecodeReason)

#: Reasons that say nothing about the message itself: retry it, never dead-letter it.
TRANSIENT_REASONS: Final[frozenset[DecodeReason]] = frozenset({"registry_unavailable", "registry_error"})


class DecodeError(Exception):
    """A value that did not decode, and whether trying again later can help.

    `reason` is a short label from `DECODE_REASONS` (metric label, `dlq.reason` header).
    `message` is for an operator: it names what was wrong and where (schema id, field, byte
    offset) and never carries the payload or a registry credential, because it ends up in logs
    and DLQ headers. `transient` is true only when the schema registry could not answer: the
    message may be fine, so the pipeline must retry it instead of dead-lettering it.
    """

    def __init__(self, reason: DecodeReason, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.reason: DecodeReason = reason
        self.message = message
        self.transient = transient

    def __repr__(self) -> str:
        return f"DecodeError({self.reason!r}, {self.message!r}, transient={self.transient})"


class EnvelopeError(ValueError):
    """A message that cannot be put into the envelope (not a JSON object, or not JSON-serialisable)."""

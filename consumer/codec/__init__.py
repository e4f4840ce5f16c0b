"""The decode stage: Kafka value bytes ⇄ Avro envelope ⇄ RudderStack message.

    decoder = Decoder.from_settings(settings)          # registry mode iff SCHEMA_REGISTRY_URL
    message = to_message(decoder.decode(value))        # DecodeError(reason, message, transient)

    encoder = Encoder.from_settings(settings, topic)   # registers <topic>-value in registry mode
    value = encoder.encode(message)

The schema is schemas/event.avsc (package data); docs/schema.md has its rules.
"""

from .decoder import Decoder
from .encoder import Encoder, RegistrationError, value_subject
from .envelope import to_envelope, to_message
from .errors import DECODE_REASONS, TRANSIENT_REASONS, DecodeError, DecodeReason, EnvelopeError
from .registry import Registry, RegistrySettings

__all__ = [
    "DECODE_REASONS",
    "TRANSIENT_REASONS",
    "DecodeError",
    "DecodeReason",
    "Decoder",
    "Encoder",
    "EnvelopeError",
    "RegistrationError",
    "Registry",
    "RegistrySettings",
    "to_envelope",
    "to_message",
    "value_subject",
]

"""Kafka value bytes → the message the transform reads: the decode stage's hot path.

Values are our Avro envelope (Confluent-framed with a registry, or plain) or plain JSON, as
RudderStack's own Kafka destination and webhook bridges write it. `KAFKA_VALUE_FORMAT=auto`
tells them apart per record by the first byte (docs/schema.md, "Value formats").

Per record this is a header check, one dict lookup for the schema id, and fastavro's
`schemaless_reader` on a parsed schema (confluent-kafka's `AvroDeserializer` walks the schema on
every record and is about 4x slower). Writer schemas are fetched from the registry once per id
and parsed once; a writer schema whose canonical form equals ours is read without resolution
(resolution costs fastavro a per-record field table), any other is resolved onto
schemas/event.avsc so older and newer producers map onto the fields this code knows.
"""

from __future__ import annotations

import io
import json
import struct
import time
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson
from fastavro import parse_schema, schemaless_reader
from fastavro.read import SchemaResolutionError
from fastavro.schema import to_parsing_canonical_form

from . import schema as envelope_schema
from ._reader import read_message
from .envelope import to_message
from .errors import DecodeError
from .registry import Registry, RegistrySettings

ValueFormat = Literal["auto", "avro", "json"]

#: A JSON object's first byte, after optional JSON white space. No Avro value of our schema can
#: start with one of these: its first byte is the branch index of `messageId`'s four-way union,
#: zigzag-encoded (0x00, 0x02, 0x04 or 0x06), and the Confluent magic byte is 0x00.
_JSON_START: Final = frozenset(b"{ \t\r\n")

_HEADER: Final = struct.Struct(">BI")
HEADER_SIZE: Final = _HEADER.size  # magic byte + 4-byte big-endian schema id

#: How long a "schema not found" answer is remembered, so a stream of records with a deleted
#: schema id costs one registry request per interval instead of one per record.
NOT_FOUND_TTL_SECONDS: Final = 10.0
MAX_NOT_FOUND: Final = 1024


@dataclass(frozen=True, slots=True)
class _Writer:
    """A writer schema ready to read with: parsed, and the reader schema to resolve onto (or None)."""

    schema_id: int
    parsed: Any
    reader: Any


class Decoder:
    """Decodes Kafka values into envelope records (dicts with every field of schemas/event.avsc).

    With a `Registry`, values are Confluent wire format: magic byte 0, the writer schema's id as
    4 bytes big-endian, then the Avro body. Without one, values are plain schemaless Avro written
    with the bundled schema. Not thread-safe: it belongs to the poll thread.
    """

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        not_found_ttl: float = NOT_FOUND_TTL_SECONDS,
        value_format: ValueFormat = "auto",
    ) -> None:
        self.registry = registry
        self.value_format = value_format
        self.not_found_ttl = not_found_ttl
        self._writers: dict[int, _Writer] = {}
        self._not_found: dict[int, tuple[float, str]] = {}
        self._local = envelope_schema.PARSED

    @classmethod
    def from_settings(cls, settings: RegistrySettings, value_format: ValueFormat = "auto") -> Decoder:
        """Registry mode when SCHEMA_REGISTRY_URL is set, plain Avro otherwise; JSON values as
        `value_format` (KAFKA_VALUE_FORMAT) says."""
        return cls(Registry.from_settings(settings), value_format=value_format)

    def decode_message(self, value: bytes | None) -> dict[str, Any]:
        """The message in `value`, whatever its encoding; `DecodeError` says why not.

        JSON values are the message itself (what RudderStack's Kafka destination writes, or a
        partner's payload); Avro values are the envelope, turned into the message. Values written
        with our own schema take `read_message`'s one-pass path; anything it does not accept, and
        values of another writer schema, are read by fastavro (precise errors, resolution).
        """
        fmt = self.value_format
        if fmt == "json" or (fmt == "auto" and value and value[0] in _JSON_START):
            return decode_json(value)
        if value:
            if self.registry is None:
                message = read_message(value)
            elif len(value) > HEADER_SIZE and value[0] == 0:
                writer = self._writers.get(_HEADER.unpack_from(value)[1])
                message = read_message(value, HEADER_SIZE) if writer and writer.reader is None else None
            else:
                message = None
            if message is not None:
                return message
        return to_message(self.decode(value))

    def close(self) -> None:
        if self.registry is not None:
            self.registry.close()

    def decode(self, value: bytes | None) -> dict[str, Any]:
        """The envelope record in `value`; `DecodeError` says why not."""
        if not value:
            raise DecodeError("empty_value", "the record has no value (null or empty)")
        if self.registry is None:
            return self._read(value, 0, self._local, None, None)
        if len(value) < HEADER_SIZE:
            raise DecodeError(
                "not_confluent_framed",
                f"value of {len(value)} bytes is shorter than the {HEADER_SIZE}-byte Confluent header",
            )
        magic, schema_id = _HEADER.unpack_from(value)
        if magic != 0:
            raise DecodeError(
                "not_confluent_framed",
                f"value does not start with the Confluent wire-format magic byte 0 (found {magic})",
            )
        writer = self._writers.get(schema_id)
        if writer is None:
            writer = self._fetch(schema_id)
        return self._read(value, HEADER_SIZE, writer.parsed, writer.reader, schema_id)

    def _read(
        self, value: bytes, start: int, writer: Any, reader: Any, schema_id: int | None
    ) -> dict[str, Any]:
        """Read one record; `schema_id` is None in plain mode (error messages only)."""
        fo = io.BytesIO(value)  # shares the bytes object; no copy
        if start:
            fo.seek(start)
        try:
            record = schemaless_reader(fo, writer, reader)
        except SchemaResolutionError as exc:
            raise DecodeError(
                "incompatible_schema",
                f"{_which(schema_id)} cannot be read as {envelope_schema.FULL_NAME}: {str(exc)[:300]}",
            ) from None
        except Exception as exc:  # truncated or garbage bytes: EOFError, IndexError, UnicodeDecodeError, …
            raise DecodeError(
                "avro_error", self._avro_hint(value, start, fo.tell(), schema_id, exc)
            ) from None
        if fo.tell() != len(value):
            raise DecodeError(
                "avro_error",
                f"Avro body decoded with {_which(schema_id)} left {len(value) - fo.tell()} of {len(value) - start}"
                " bytes unread (written with another schema?)",
            )
        return record  # type: ignore[return-value]  # a record schema reads as a dict

    def _avro_hint(self, value: bytes, start: int, at: int, schema_id: int | None, exc: Exception) -> str:
        message = (
            f"Avro body of {len(value) - start} bytes does not decode with {_which(schema_id)}"
            f" ({type(exc).__name__} at byte {max(at - start, 0)})"
        )
        if self.registry is None and len(value) >= HEADER_SIZE and value[0] == 0:
            message += "; it may be Confluent-framed: set SCHEMA_REGISTRY_URL"
        return message

    def _remember_not_found(self, schema_id: int, now: float, message: str) -> None:
        """Remember a 404 for a while; bounded, since garbage values can name any id."""
        if len(self._not_found) >= MAX_NOT_FOUND:
            self._not_found = {k: v for k, v in self._not_found.items() if now - v[0] < self.not_found_ttl}
            if len(self._not_found) >= MAX_NOT_FOUND:
                self._not_found.clear()
        self._not_found[schema_id] = (now, message)

    def _fetch(self, schema_id: int) -> _Writer:
        """Fetch, check and parse the writer schema `schema_id` (the slow path, once per id)."""
        assert self.registry is not None
        doing = f"schema id {schema_id}"
        now = time.monotonic()
        remembered = self._not_found.get(schema_id)
        if remembered is not None:
            if now - remembered[0] < self.not_found_ttl:
                raise DecodeError("unknown_schema_id", remembered[1])
            del self._not_found[schema_id]
        try:
            registered = self.registry.client.get_schema(schema_id)
        except Exception as exc:
            error = self.registry.failure(exc, doing)
            if error.reason == "unknown_schema_id":
                self._remember_not_found(schema_id, now, error.message)
            raise error from None
        kind = registered.schema_type or "AVRO"
        if kind != "AVRO":
            raise DecodeError("unsupported_schema", f"{doing} is a {kind} schema; only AVRO is decoded")
        if registered.references:
            raise DecodeError(
                "unsupported_schema", f"{doing} uses schema references, which this decoder does not resolve"
            )
        if not registered.schema_str:
            raise DecodeError(
                "unsupported_schema", f"{doing} came back from the registry without schema text"
            )
        try:
            raw = json.loads(registered.schema_str)
            parsed = parse_schema(raw)
            same = to_parsing_canonical_form(raw) == envelope_schema.CANONICAL
        except Exception as exc:
            raise DecodeError(
                "unsupported_schema", f"{doing} is not a valid Avro schema ({type(exc).__name__})"
            ) from None
        writer = _Writer(schema_id, self._local if same else parsed, None if same else self._local)
        self._writers[schema_id] = writer
        return writer


def decode_json(value: bytes | None) -> dict[str, Any]:
    """A JSON object value; anything else is a poison message with a precise reason."""
    if not value:
        raise DecodeError("empty_value", "the record has no value (null or empty)")
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise DecodeError("invalid_json", f"value of {len(value)} bytes is not JSON: {exc}"[:300]) from None
    if type(parsed) is not dict:
        raise DecodeError("json_not_object", f"JSON value is a {type(parsed).__name__}, not an object")
    return parsed


def _which(schema_id: int | None) -> str:
    return "the bundled schema" if schema_id is None else f"schema id {schema_id}"

"""Framing, garbage and schema evolution, through the Decoder both modes use in production."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.codec import DecodeError, Decoder, Encoder, Registry, to_envelope, to_message
from consumer.codec.schema import SCHEMA, schema_text
from consumer.sample import sample_events
from tests.support.schema_registry import SchemaRegistryServer

EVENT = next(iter(sample_events(1, seed=11)))


def reason_of(decoder: Decoder, value: bytes | None) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decoder.decode(value)
    return caught.value


def frame(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + body


def write(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, parse_schema(schema), record)
    return out.getvalue()


# Plain Avro (no registry) ---------------------------------------------------------------------------


def test_plain_mode_reads_what_the_plain_encoder_writes() -> None:
    assert to_message(Decoder().decode(Encoder().encode(EVENT))) == EVENT


@pytest.mark.parametrize("value", [b"", None])
def test_an_empty_value_is_empty_value(value: bytes | None) -> None:
    error = reason_of(Decoder(), value)
    assert (error.reason, error.transient) == ("empty_value", False)


def test_plain_mode_truncated_body_is_an_avro_error() -> None:
    value = Encoder().encode(EVENT)
    error = reason_of(Decoder(), value[: len(value) // 2])
    assert (error.reason, error.transient) == ("avro_error", False)
    assert "does not decode with the bundled schema" in error.message


def test_plain_mode_trailing_bytes_are_an_avro_error() -> None:
    error = reason_of(Decoder(), Encoder().encode(EVENT) + b"\x02\x04")
    assert error.reason == "avro_error"
    assert "left 2 of" in error.message


def test_plain_mode_hints_at_the_registry_for_framed_values(registry: SchemaRegistryServer) -> None:
    framed = Encoder(Registry.connect(registry.url), "t").encode(EVENT)
    error = reason_of(Decoder(), framed)
    assert error.reason == "avro_error"
    assert "set SCHEMA_REGISTRY_URL" in error.message


@given(st.binary(min_size=1, max_size=200))
@settings(max_examples=300, deadline=None)
def test_garbage_never_escapes_as_anything_but_decode_error(value: bytes) -> None:
    try:
        record = Decoder().decode(value)
    except DecodeError as exc:
        error = exc
    else:  # some byte strings are valid records; then they are whole ones
        assert set(record) == {f["name"] for f in SCHEMA["fields"]}
        return
    assert error.reason == "avro_error"
    assert not error.transient
    if len(value) >= 4:  # shorter hex strings turn up in any text
        assert value.hex() not in error.message


# Confluent framing (registry) -----------------------------------------------------------------------


@pytest.fixture
def decoder(registry: SchemaRegistryServer) -> Decoder:
    return Decoder(Registry.connect(registry.url))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty_value"),
        (None, "empty_value"),
        (b"\x00\x00\x01", "not_confluent_framed"),  # shorter than the header
        (b'{"type":"track"}', "not_confluent_framed"),  # JSON text
        (b"\x01\x00\x00\x00\x01\x02", "not_confluent_framed"),  # wrong magic byte
    ],
)
def test_framing_errors(decoder: Decoder, value: bytes | None, reason: str) -> None:
    error = reason_of(decoder, value)
    assert (error.reason, error.transient) == (reason, False)


def test_truncated_and_garbage_bodies_are_avro_errors(
    decoder: Decoder, registry: SchemaRegistryServer
) -> None:
    schema_id = registry.register("t-value", schema_text())
    good = Encoder(decoder.registry, "t").encode(EVENT)
    assert good[1:5] == schema_id.to_bytes(4, "big")
    for broken in (good[:-7], good[:6], frame(schema_id, b"\xff" * 40), good + b"\x00"):
        error = reason_of(decoder, broken)
        assert (error.reason, error.transient) == ("avro_error", False)
        assert f"schema id {schema_id}" in error.message


def test_a_writer_schema_is_fetched_once_per_id(decoder: Decoder, registry: SchemaRegistryServer) -> None:
    encoder = Encoder(decoder.registry, "orders")
    events = list(sample_events(50, seed=2))
    assert [to_message(decoder.decode(encoder.encode(e))) for e in events] == events
    assert registry.requests["GET /schemas/ids/{id}"] == 1


# Schema evolution -----------------------------------------------------------------------------------


def evolved(change: str) -> dict[str, Any]:
    schema = copy.deepcopy(SCHEMA)
    fields = schema["fields"]
    if change == "newer":  # a later version with a field this consumer does not know yet
        fields.insert(3, {"name": "sessionId", "type": "string", "default": ""})
        fields.append(
            {"name": "consent", "type": ["null", {"type": "map", "values": "boolean"}], "default": None}
        )
    elif change == "older":  # an earlier version: no category/groupId, userId only ever text
        schema["fields"] = [f for f in fields if f["name"] not in ("category", "groupId")]
        next(f for f in schema["fields"] if f["name"] == "userId")["type"] = "string"
    elif change == "incompatible":  # `type` became a number: cannot be read as our string
        field = next(f for f in fields if f["name"] == "type")
        field["type"], field["default"] = "long", 0
    return schema


def test_a_newer_writer_with_extra_fields_resolves_onto_ours(
    decoder: Decoder, registry: SchemaRegistryServer
) -> None:
    schema = evolved("newer")
    schema_id = registry.register("t-value", json.dumps(schema))
    record = {**to_envelope(EVENT), "sessionId": "s-9", "consent": {"email": True}}
    envelope = decoder.decode(frame(schema_id, write(schema, record)))
    assert "sessionId" not in envelope
    assert "consent" not in envelope
    assert to_message(envelope) == EVENT


def test_an_older_writer_missing_fields_gets_the_defaults(
    decoder: Decoder, registry: SchemaRegistryServer
) -> None:
    schema = evolved("older")
    schema_id = registry.register("t-value", json.dumps(schema))
    message = {"type": "alias", "userId": "u-1", "previousId": "anon-1", "groupId": "g-1"}
    record = {k: v for k, v in to_envelope(message).items() if k not in ("category", "groupId")}
    envelope = decoder.decode(frame(schema_id, write(schema, record)))
    assert envelope["groupId"] == ""
    assert envelope["category"] == ""
    assert to_message(envelope) == {"type": "alias", "userId": "u-1", "previousId": "anon-1"}


def test_an_incompatible_writer_is_a_permanent_error(
    decoder: Decoder, registry: SchemaRegistryServer
) -> None:
    schema = evolved("incompatible")
    schema_id = registry.register("t-value", json.dumps(schema))
    record = {**to_envelope({"userId": "u"}), "type": 3}
    error = reason_of(decoder, frame(schema_id, write(schema, record)))
    assert (error.reason, error.transient) == ("incompatible_schema", False)


def test_an_equal_schema_without_docs_is_read_without_resolution(
    decoder: Decoder, registry: SchemaRegistryServer
) -> None:
    bare = copy.deepcopy(SCHEMA)
    bare.pop("doc")
    for field in bare["fields"]:
        field.pop("doc")
    schema_id = registry.register("t-value", json.dumps(bare))
    assert to_message(decoder.decode(frame(schema_id, write(bare, to_envelope(EVENT))))) == EVENT
    assert decoder._writers[schema_id].reader is None  # the fast path


def test_non_avro_and_broken_writer_schemas_are_unsupported(
    decoder: Decoder, registry: SchemaRegistryServer
) -> None:
    proto = registry.register("p-value", '"syntax = \\"proto3\\";"', schema_type="PROTOBUF")
    not_avro = registry.register(
        "x-value", json.dumps({"type": "record", "name": "X", "fields": [{"name": 1}]})
    )
    for schema_id, expected in ((proto, "is a PROTOBUF schema"), (not_avro, "not a valid Avro schema")):
        error = reason_of(decoder, frame(schema_id, b"\x00"))
        assert (error.reason, error.transient) == ("unsupported_schema", False)
        assert expected in error.message


def test_a_writer_schema_that_is_not_our_record_is_incompatible(
    decoder: Decoder, registry: SchemaRegistryServer
) -> None:
    schema_id = registry.register("strings-value", '{"type": "string"}')
    error = reason_of(decoder, frame(schema_id, b"\x06abc"))
    assert (error.reason, error.transient) == ("incompatible_schema", False)
    assert f"schema id {schema_id} cannot be read as clevertap_consumer.events.Event" in error.message


# Value formats (KAFKA_VALUE_FORMAT; docs/schema.md, "Value formats") --------------------------------

JSON_MESSAGE = {"type": "track", "event": "Song Played", "userId": "u-1", "destinationId": "d"}


@pytest.mark.parametrize("prefix", [b"", b" ", b"\n\t\r "])
def test_auto_reads_a_json_object_as_the_message(prefix: bytes) -> None:
    assert Decoder().decode_message(prefix + json.dumps(JSON_MESSAGE).encode()) == JSON_MESSAGE


def test_auto_reads_plain_avro_as_the_envelope_turned_message() -> None:
    assert Decoder().decode_message(Encoder().encode(EVENT)) == EVENT


def test_auto_reads_confluent_framed_avro_in_registry_mode(decoder: Decoder) -> None:
    framed = Encoder(decoder.registry, "t").encode(EVENT)
    assert decoder.decode_message(framed) == EVENT
    assert decoder.decode_message(json.dumps(JSON_MESSAGE).encode()) == JSON_MESSAGE


@given(st.integers(0, 10_000))
@settings(max_examples=50, deadline=None)
def test_no_avro_value_of_our_schema_starts_like_json(seed: int) -> None:
    # The claim docs/schema.md makes: the first byte is messageId's union branch, zigzag-encoded.
    for event in sample_events(5, seed=seed):
        value = Encoder().encode(event)
        assert value[0] in (0x00, 0x02, 0x04, 0x06)
        assert Decoder().decode_message(value) == event


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b'{"type": "track"', "invalid_json"),  # auto: a `{` means JSON, so broken JSON says so
        (b"{}}", "invalid_json"),
        (b"", "empty_value"),
        (None, "empty_value"),
    ],
)
def test_auto_json_errors_are_precise(value: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        Decoder().decode_message(value)
    assert (caught.value.reason, caught.value.transient) == (reason, False)


@pytest.mark.parametrize(
    ("value", "reason", "needle"),
    [
        (b"[1, 2]", "json_not_object", "list"),
        (b'"track"', "json_not_object", "str"),
        (b"42", "json_not_object", "int"),
        (b"null", "json_not_object", "NoneType"),
        (b"not json at all", "invalid_json", "not JSON"),
        (Encoder().encode(EVENT), "invalid_json", "not JSON"),  # Avro on a topic forced to JSON
        (b"", "empty_value", "no value"),
    ],
)
def test_json_forced_reads_only_json_objects(value: bytes, reason: str, needle: str) -> None:
    with pytest.raises(DecodeError) as caught:
        Decoder(value_format="json").decode_message(value)
    assert caught.value.reason == reason
    assert needle in caught.value.message
    assert Decoder(value_format="json").decode_message(b' {"a": [1]} ') == {"a": [1]}


def test_avro_forced_never_reads_json(decoder: Decoder) -> None:
    text = json.dumps(JSON_MESSAGE).encode()
    with pytest.raises(DecodeError) as plain:
        Decoder(value_format="avro").decode_message(text)
    assert plain.value.reason == "avro_error"
    forced = Decoder(decoder.registry, value_format="avro")
    with pytest.raises(DecodeError) as framed:
        forced.decode_message(text)
    assert framed.value.reason == "not_confluent_framed"
    assert Decoder(value_format="avro").decode_message(Encoder().encode(EVENT)) == EVENT


@given(st.binary(max_size=200), st.sampled_from(["auto", "avro", "json"]))
@settings(max_examples=300, deadline=None)
def test_any_bytes_in_any_format_decode_or_give_a_decode_error(value: bytes, fmt: Any) -> None:
    reason = None
    try:
        message = Decoder(value_format=fmt).decode_message(value)
    except DecodeError as exc:
        reason = exc.reason
    else:
        assert type(message) is dict
    assert reason in (None, "empty_value", "avro_error", "invalid_json", "json_not_object")

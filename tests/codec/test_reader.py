"""The one-pass reader of our own envelope (consumer.codec._reader) says exactly what fastavro +
`to_message` say: the same message for every value they read, and for every value they refuse
it steps aside, so the Decoder's answer (message or DecodeError, reason and words) is the same
whichever path it took."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.codec import DecodeError, Decoder, Encoder, Registry, to_envelope, to_message
from consumer.codec._reader import read_message
from consumer.codec.decoder import HEADER_SIZE
from consumer.codec.schema import SCHEMA
from consumer.sample import sample_events
from tests.support.schema_registry import SchemaRegistryServer

from .strategies import messages, strict
from .test_decoder import evolved, frame, write

ENCODER = Encoder()
SLOW = Decoder()


def slow_path(value: bytes, decoder: Decoder = SLOW) -> Any:
    """fastavro's envelope, then `to_message`: the reference answer (a message or the error)."""
    try:
        return to_message(decoder.decode(value))
    except DecodeError as exc:
        return (exc.reason, exc.message, exc.transient)


def fast_path(value: bytes, decoder: Decoder) -> Any:
    try:
        return decoder.decode_message(value)
    except DecodeError as exc:
        return (exc.reason, exc.message, exc.transient)


@given(messages())
@settings(max_examples=400, deadline=None)
def test_every_message_reads_the_same_as_fastavro_and_to_message(message: dict[str, Any]) -> None:
    value = ENCODER.encode(message)
    fast = read_message(value)
    assert fast is not None
    assert strict(fast) == strict(slow_path(value)) == strict(message)
    assert list(fast) == list(slow_path(value))  # key order too: fields, then extra's keys


def test_the_sample_corpus_takes_the_fast_path() -> None:
    for event in sample_events(300, seed=5, destinations=["d1", "d2"]):
        value = ENCODER.encode(event)
        assert read_message(value) == event


def test_numbers_booleans_and_long_strings_of_the_scalar_union() -> None:
    # long (multi-byte varints, both signs, both ends of int64), double, boolean, and strings
    # longer than a one-byte length.
    for value in (0, 1, -1, 63, 64, -65, 2**31, 2**63 - 1, -(2**63), 0.5, -1e300, True, False, "x" * 5000):
        message = {"userId": value, "event": value, "type": "track"}
        assert strict(read_message(ENCODER.encode(message))) == strict(message)


@given(messages(), st.data())
@settings(max_examples=400, deadline=None)
def test_damaged_values_get_the_same_answer_as_the_fastavro_path(
    message: dict[str, Any], data: st.DataObject
) -> None:
    value = bytearray(ENCODER.encode(message))
    how = data.draw(st.sampled_from(["truncate", "flip", "append", "set"]))
    at = data.draw(st.integers(0, len(value) - 1))
    if how == "truncate":
        value = value[:at]
    elif how == "flip":
        value[at] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "append":
        value += data.draw(st.binary(min_size=1, max_size=3))
    else:
        value[at] = data.draw(st.integers(0, 255))
    damaged = bytes(value)
    expected = (
        slow_path(damaged) if damaged else ("empty_value", "the record has no value (null or empty)", False)
    )
    fast = read_message(damaged) if damaged else None
    if fast is not None:  # the fast path only ever answers with the reference message
        assert strict(fast) == strict(expected)
    got = fast_path(damaged, Decoder(value_format="avro"))
    assert strict(got) == strict(expected)


@pytest.mark.parametrize(
    "body",
    [
        b"\x08",  # messageId: union branch 4 (past the four branches)
        b"\x01",  # messageId: a negative branch
        b"\x00\x01",  # messageId: string of length -1
        b"\x02" + b"\xff" * 11,  # messageId: a long longer than 64 bits
        b"\x06\x02",  # messageId: a boolean byte that is neither 0 nor 1
        b"\x00\x04\xff\xfe",  # messageId: invalid UTF-8
    ],
)
def test_bytes_fastavro_refuses_are_left_to_it(body: bytes) -> None:
    assert read_message(body) is None
    with pytest.raises(DecodeError) as caught:
        Decoder(value_format="avro").decode_message(body)
    assert caught.value.reason == "avro_error"


@pytest.mark.parametrize(
    ("field", "text"),
    [("properties", "{not json"), ("extra", "[1, 2]"), ("extra", "null"), ("context", "1 2")],
)
def test_broken_json_text_is_left_to_the_precise_error(field: str, text: str) -> None:
    envelope = {**to_envelope({"type": "track", "userId": "u"}), field: text}
    value = write(SCHEMA, envelope)
    assert read_message(value) is None
    with pytest.raises(DecodeError) as caught:
        Decoder().decode_message(value)
    assert caught.value.reason == "bad_json_field"
    assert field in caught.value.message


# Registry mode -------------------------------------------------------------------------------------


@pytest.fixture
def decoder(registry: SchemaRegistryServer) -> Decoder:
    return Decoder(Registry.connect(registry.url))


def test_framed_values_of_our_schema_take_the_fast_path(decoder: Decoder) -> None:
    encoder = Encoder(decoder.registry, "t")
    events = list(sample_events(20, seed=9))
    values = [encoder.encode(e) for e in events]
    assert [decoder.decode_message(v) for v in values] == events
    assert [read_message(v, HEADER_SIZE) for v in values] == events  # what decode_message read


def test_another_writer_schema_is_resolved_by_fastavro(
    decoder: Decoder, registry: SchemaRegistryServer
) -> None:
    """A newer producer's schema (extra fields): read with resolution, never by the fast path,
    which would misread the extra fields' bytes."""
    schema = evolved("newer")
    schema_id = registry.register("t-value", json.dumps(schema))
    event = next(iter(sample_events(1, seed=4)))
    record = {**to_envelope(event), "sessionId": "s-9", "consent": {"email": True}}
    value = frame(schema_id, write(schema, record))
    assert decoder.decode_message(value) == event
    assert decoder.decode_message(value) == event  # the writer known now: still fastavro's read
    assert decoder._writers[schema_id].reader is not None

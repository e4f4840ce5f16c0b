"""Message ⇄ envelope ⇄ Avro bytes keeps every message exactly, JSON types included."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from consumer.codec import DecodeError, Decoder, Encoder, EnvelopeError, to_envelope, to_message
from consumer.sample import sample_events

from .strategies import messages, strict

ENCODER = Encoder()
DECODER = Decoder()


def round_trip(message: dict[str, Any]) -> dict[str, Any]:
    return to_message(DECODER.decode(ENCODER.encode(message)))


@given(messages())
@settings(max_examples=400, deadline=None)
def test_any_json_object_survives_the_round_trip_with_its_types(message: dict[str, Any]) -> None:
    assert strict(round_trip(message)) == strict(message)


def test_realistic_corpus_round_trips() -> None:
    corpus = list(sample_events(500, seed=3, destinations=["d1", "d2"]))
    for message in corpus:
        assert strict(round_trip(message)) == strict(message)


def test_numeric_ids_and_event_stay_numbers_in_their_own_fields() -> None:
    message = {"type": "track", "userId": 42, "anonymousId": 7.5, "event": 12, "messageId": True}
    envelope = to_envelope(message)
    assert envelope["userId"] == 42
    assert type(envelope["userId"]) is int
    assert envelope["anonymousId"] == 7.5
    assert envelope["event"] == 12
    assert envelope["messageId"] is True
    assert envelope["extra"] == ""  # nothing needed the overflow field
    back = round_trip(message)
    assert type(back["userId"]) is int
    assert type(back["event"]) is int
    assert back["messageId"] is True


def test_values_that_do_not_fit_their_field_travel_in_extra() -> None:
    message = {
        "userId": None,  # explicit null
        "anonymousId": "",  # empty string: "" means absent in a field
        "groupId": {"a": 1},  # an object where a scalar belongs
        "previousId": 2**63,  # beyond Avro's long
        "timestamp": 1700000000,  # a number in a text field
        "type": "identify",
        "sessionId": "s-1",  # a key the schema does not name
    }
    envelope = to_envelope(message)
    assert orjson.loads(envelope["extra"]) == {
        "userId": None,
        "anonymousId": "",
        "groupId": {"a": 1},
        "previousId": 2**63,
        "timestamp": 1700000000,
        "sessionId": "s-1",
    }
    assert envelope["type"] == "identify"
    assert strict(round_trip(message)) == strict(message)


def test_json_fields_are_json_text_and_keep_explicit_null() -> None:
    message = {"properties": {"price": 9.99, "tags": ["a", "ü"]}, "traits": None, "context": [1, 2]}
    envelope = to_envelope(message)
    assert orjson.loads(envelope["properties"]) == {"price": 9.99, "tags": ["a", "ü"]}
    assert envelope["traits"] == "null"
    assert round_trip(message) == message


def test_absent_fields_are_omitted_from_the_message() -> None:
    assert round_trip({"type": "page"}) == {"type": "page"}
    assert round_trip({}) == {}


def test_a_field_wins_over_the_same_key_in_extra() -> None:
    envelope = to_envelope({"userId": "u-1"})
    envelope["extra"] = orjson.dumps({"userId": "stale", "k": 1}).decode()
    assert to_message(envelope) == {"userId": "u-1", "k": 1}


@pytest.mark.parametrize("value", [[1, 2], "text", 3, None])
def test_an_event_must_be_a_json_object(value: Any) -> None:
    with pytest.raises(EnvelopeError, match="JSON object"):
        to_envelope(value)


def test_values_json_cannot_carry_are_refused() -> None:
    with pytest.raises(EnvelopeError, match="properties"):
        to_envelope({"properties": {"when": object()}})


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        ("properties", "{not json", "field 'properties' is not valid JSON text"),
        ("context", '{"a": 1', "field 'context' is not valid JSON text"),
        ("extra", "[1, 2]", "field 'extra' must hold a JSON object, not list"),
        ("extra", "{oops", "field 'extra' is not valid JSON text"),
    ],
)
def test_broken_json_text_is_a_bad_json_field(field: str, text: str, expected: str) -> None:
    envelope = to_envelope({"type": "track"})
    envelope[field] = text
    with pytest.raises(DecodeError) as caught:
        to_message(envelope)
    assert caught.value.reason == "bad_json_field"
    assert not caught.value.transient
    assert expected in caught.value.message
    assert text not in caught.value.message  # the payload stays out of the message

"""Dead letters reach the broker with the original bytes and headers that explain them."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Producer

from consumer.contracts import Failure
from consumer.dlq import TRUNCATED_HEADER, TRUNCATED_VALUE_BYTES, DeadLetters
from consumer.dlq_admin import DeadLetter, Target, target_for
from consumer.logs import register_secret
from consumer.offsets import Entry
from consumer.source import message_headers
from tests.support.kafka import KafkaBed


def test_dead_letter_keeps_original_record_and_says_why(
    kafka: KafkaBed, new_topic: Callable[..., str]
) -> None:
    dlq_topic = new_topic()
    written: list[Entry] = []
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "acks": "all", "enable.idempotence": True})
    letters: DeadLetters[Entry] = DeadLetters(producer, dlq_topic, "group-x", written.append)
    entry = Entry(
        "events",
        3,
        41,
        b"user-1",
        b"\x00raw-avro",
        [("trace", b"abc")],
        1_700_000_000_000,
        destination_id="dest-1",
    )
    entry.fail(Failure("deliver", "clevertap_rejected", "Phone invalid", 516))
    letters.send(entry, entry.failures[0])
    assert written == [], "not done before the broker acknowledges"
    assert letters.flush(30) == 0
    assert written == [entry]

    (msg,) = kafka.consume_all(dlq_topic, 1)
    assert msg.key() == b"user-1"
    assert msg.value() == b"\x00raw-avro"
    assert msg.timestamp()[1] == 1_700_000_000_000
    headers = dict(message_headers(msg))
    assert headers["trace"] == b"abc"
    assert headers["dlq.stage"] == b"deliver"
    assert headers["dlq.reason"] == b"clevertap_rejected"
    assert headers["dlq.message"] == b"Phone invalid"
    assert headers["dlq.clevertap.code"] == b"516"
    assert headers["dlq.source.topic"] == b"events"
    assert headers["dlq.source.partition"] == b"3"
    assert headers["dlq.source.offset"] == b"41"
    assert headers["dlq.destination.id"] == b"dest-1"
    assert headers["dlq.consumer.group"] == b"group-x"
    assert int(headers["dlq.timestamp"] or b"0") > 1_700_000_000_000


def test_redriven_record_does_not_stack_old_dlq_headers(
    kafka: KafkaBed, new_topic: Callable[..., str]
) -> None:
    dlq_topic = new_topic()
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    letters: DeadLetters[Entry] = DeadLetters(producer, dlq_topic, "g", lambda _e: None)
    entry = Entry("events", 0, 7, None, b"v", [("dlq.reason", b"old"), ("dlq.stage", b"decode")], None)
    letters.send(entry, Failure("route", "unknown_destination", "destinationId 'x' is not configured"))
    assert letters.flush(30) == 0
    (msg,) = kafka.consume_all(dlq_topic, 1)
    reasons = [v for k, v in message_headers(msg) if k == "dlq.reason"]
    assert reasons == [b"unknown_destination"]


def test_long_messages_are_cut_to_a_header_sized_text(kafka: KafkaBed, new_topic: Callable[..., str]) -> None:
    dlq_topic = new_topic()
    letters: DeadLetters[Entry] = DeadLetters(
        Producer({"bootstrap.servers": kafka.bootstrap}), dlq_topic, "g", lambda _e: None
    )
    letters.send(Entry("events", 0, 0, None, b"v", [], None), Failure("decode", "avro_error", "é" * 2000))
    assert letters.flush(30) == 0
    (msg,) = kafka.consume_all(dlq_topic, 1)
    text = dict(message_headers(msg))["dlq.message"] or b""
    assert len(text) <= 1000
    assert text.decode() == "é" * (len(text) // 2)


def test_a_copy_too_large_for_the_producer_is_still_recorded_cut(
    kafka: KafkaBed, new_topic: Callable[..., str]
) -> None:
    """A ~1 MB value plus DLQ headers exceeds message.max.bytes: the copy is written with its
    value cut and a header saying so, instead of stopping the service (MSG_SIZE_TOO_LARGE)."""
    dlq_topic = new_topic()
    written: list[Entry] = []
    letters: DeadLetters[Entry] = DeadLetters(
        Producer({"bootstrap.servers": kafka.bootstrap}), dlq_topic, "g", written.append
    )
    value = b"\x00" + b"x" * 999_990
    entry = Entry("events", 0, 5, b"k", value, [("trace", b"t")], None)
    letters.send(entry, Failure("decode", "avro_error", "garbage"))
    assert letters.flush(30) == 0
    assert written == [entry]
    (msg,) = kafka.consume_all(dlq_topic, 1)
    headers = dict(message_headers(msg))
    assert headers[TRUNCATED_HEADER] == str(len(value)).encode()
    assert msg.value() == value[:TRUNCATED_VALUE_BYTES]
    assert headers["dlq.reason"] == b"avro_error"
    assert headers["dlq.source.offset"] == b"5"
    assert headers["trace"] == b"t"


def test_a_copy_the_broker_refuses_as_too_large_is_recorded_without_value(
    kafka: KafkaBed, new_topic: Callable[..., str]
) -> None:
    """The broker's own limit (topic max.message.bytes) answers MSG_SIZE_TOO_LARGE after the
    produce: the copy shrinks step by step until it fits, and still counts as written."""
    dlq_topic = kafka.create_topic(f"small-{new_topic()}", config={"max.message.bytes": "20000"})
    written: list[Entry] = []
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "compression.type": "none"})
    letters: DeadLetters[Entry] = DeadLetters(producer, dlq_topic, "g", written.append)
    entry = Entry("events", 1, 9, b"k", b"v" * 200_000, [("big", b"h" * 30_000)], None)
    letters.send(entry, Failure("route", "unknown_destination", "destinationId 'x' is not configured"))
    assert letters.flush(30) == 0
    assert written == [entry]
    (msg,) = kafka.consume_all(dlq_topic, 1)
    headers = dict(message_headers(msg))
    assert msg.value() is None
    assert headers[TRUNCATED_HEADER] == b"200000"
    assert "big" not in headers
    assert headers["dlq.source.partition"] == b"1"


def test_every_header_we_add_is_redacted(kafka: KafkaBed, new_topic: Callable[..., str]) -> None:
    dlq_topic = new_topic()
    register_secret("echoed-passcode-77")
    letters: DeadLetters[Entry] = DeadLetters(
        Producer({"bootstrap.servers": kafka.bootstrap}), dlq_topic, "g", lambda _e: None
    )
    entry = Entry("events", 0, 0, None, b"v", [], None, destination_id="d")
    letters.send(entry, Failure("deliver", "unauthorized", "Invalid passcode echoed-passcode-77 for A", 401))
    assert letters.flush(30) == 0
    (msg,) = kafka.consume_all(dlq_topic, 1)
    assert dict(message_headers(msg))["dlq.message"] == b"Invalid passcode *** for A"
    assert all(b"echoed-passcode-77" not in (v or b"") for _, v in message_headers(msg))


def test_redrive_refuses_a_copy_whose_value_was_cut() -> None:
    """Re-publishing the cut value would make a new poison pill; the operator is pointed at the
    original instead."""
    letter = DeadLetter(
        "dlq",
        0,
        3,
        None,
        None,
        b"x" * 10,
        {
            "value.truncated": "1000100",
            "source.topic": "events",
            "source.partition": "2",
            "source.offset": "77",
        },
        [],
    )
    why = target_for(letter, {"events": 4}, None)
    assert why == (
        "the DLQ copy's value was cut from 1000100 bytes to fit the broker; the original is at events/2/77"
    )
    whole = DeadLetter("dlq", 0, 4, None, None, b"v", {"source.topic": "events", "source.partition": "2"}, [])
    assert target_for(whole, {"events": 4}, None) == Target("events", 2)

"""Dead letters reach the broker with the original bytes and headers that explain them."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Producer

from consumer.dlq import DeadLetters, Failure
from consumer.offsets import Entry
from consumer.source import message_headers
from tests.support.kafka import KafkaBed


def test_dead_letter_keeps_original_record_and_says_why(
    kafka: KafkaBed, new_topic: Callable[..., str]
) -> None:
    dlq_topic = new_topic()
    written: list[Entry] = []
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "acks": "all", "enable.idempotence": True})
    letters = DeadLetters(producer, dlq_topic, "group-x", written.append)
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
    entry.failures.append(Failure("deliver", "clevertap_rejected", "Phone invalid", 516))
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
    letters = DeadLetters(producer, dlq_topic, "g", lambda _e: None)
    entry = Entry("events", 0, 7, None, b"v", [("dlq.reason", b"old"), ("dlq.stage", b"decode")], None)
    letters.send(entry, Failure("route", "unknown_destination", "destinationId 'x' is not configured"))
    assert letters.flush(30) == 0
    (msg,) = kafka.consume_all(dlq_topic, 1)
    reasons = [v for k, v in message_headers(msg) if k == "dlq.reason"]
    assert reasons == [b"unknown_destination"]


def test_long_messages_are_cut_to_a_header_sized_text(kafka: KafkaBed, new_topic: Callable[..., str]) -> None:
    dlq_topic = new_topic()
    letters = DeadLetters(Producer({"bootstrap.servers": kafka.bootstrap}), dlq_topic, "g", lambda _e: None)
    letters.send(Entry("events", 0, 0, None, b"v", [], None), Failure("decode", "avro_error", "é" * 2000))
    assert letters.flush(30) == 0
    (msg,) = kafka.consume_all(dlq_topic, 1)
    text = dict(message_headers(msg))["dlq.message"] or b""
    assert len(text) <= 1000
    assert text.decode() == "é" * (len(text) // 2)

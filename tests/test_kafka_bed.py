"""The test bed itself: a real broker that keeps data and commits across a restart."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.support.kafka import KafkaBed


def test_broker_round_trips_records_and_commits(kafka: KafkaBed, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=3)
    kafka.produce(topic, [f"v{i}".encode() for i in range(30)])
    got = kafka.consume_all(topic, 30)
    assert sorted(m.value() or b"" for m in got) == sorted(f"v{i}".encode() for i in range(30))
    assert sum(kafka.end_offsets(topic).values()) == 30

    c = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "g-bed", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    c.close()
    assert kafka.committed("g-bed", topic) == {0: 4}


def test_restarted_broker_keeps_records_and_offsets(kafka: KafkaBed, new_topic: Callable[..., str]) -> None:
    if kafka.broker is None:
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS names an external broker this test cannot restart")
    topic = new_topic()
    kafka.produce(topic, [b"before"])
    c = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "g-restart", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    c.close()
    kafka.broker.stop()
    kafka.broker.start()
    kafka.produce(topic, [b"after"])
    assert [m.value() for m in kafka.consume_all(topic, 2)] == [b"before", b"after"]
    assert kafka.committed("g-restart", topic) == {0: 1}

"""librdkafka statistics from a real consumer on the test broker, folded into gauges."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import REGISTRY

from consumer import metrics
from consumer.health import Health
from consumer.kafka_stats import KafkaStats
from tests.support.kafka import KafkaBed

pytestmark = pytest.mark.kafka


class Recorder:
    """stats_cb that keeps each raw document and hands it to the real KafkaStats."""

    def __init__(self, stats: KafkaStats) -> None:
        self.stats = stats
        self.documents: list[dict[str, Any]] = []

    def __call__(self, raw: str) -> None:
        self.documents.append(json.loads(raw))
        self.stats(raw)


def _poll_until(consumer: Consumer, done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "condition not reached"
        consumer.poll(0.1)


def _gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(f"clevertap_consumer_{name}", labels)


def test_real_statistics_become_lag_offset_broker_and_fetch_queue_gauges(
    kafka: KafkaBed, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=2)
    for partition in (0, 1):
        kafka.produce(topic, [b"x" * 50] * 50, partition=partition)

    health = Health(publish=False)
    recorder = Recorder(KafkaStats(health))
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap,
            "group.id": f"stats-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "statistics.interval.ms": 200,
            "stats_cb": recorder,
        }
    )
    try:
        consumer.subscribe([topic])
        got: list[Any] = []
        deadline = time.monotonic() + 30
        while len({m.partition() for m in got}) < 2 or len(got) < 20:
            assert time.monotonic() < deadline, "no records"
            got.extend(m for m in consumer.consume(10, 0.2) if m.error() is None)
        # Partition 0 done up to offset 9 (the stored offset is the next one to read: 10) and
        # committed; partition 1 committed at 25 with nothing stored, so its lag falls back to
        # the committed offset.
        consumer.store_offsets(offsets=[TopicPartition(topic, 0, 10)])
        consumer.commit(asynchronous=False)
        consumer.commit(offsets=[TopicPartition(topic, 1, 25)], asynchronous=False)
        # Then done up to 29 but not committed yet: lag counts from the stored offset, which is
        # what the next commit will write.
        consumer.store_offsets(offsets=[TopicPartition(topic, 0, 30)])

        def reflects_commits() -> bool:
            if not recorder.documents:
                return False
            parts = recorder.documents[-1]["topics"].get(topic, {}).get("partitions", {})
            p0, p1 = parts.get("0", {}), parts.get("1", {})
            return bool(
                p0.get("committed_offset") == 10
                and p0.get("stored_offset") == 30
                and p1.get("committed_offset") == 25
            )

        _poll_until(consumer, reflects_commits)

        doc = recorder.documents[-1]
        assert doc["type"] == "consumer"
        assert _gauge("consumer_lag", topic=topic, partition="0") == 20  # 50 - stored 30
        assert _gauge("consumer_lag", topic=topic, partition="1") == 25  # 50 - committed 25
        assert _gauge("committed_offset", topic=topic, partition="0") == 10
        assert _gauge("committed_offset", topic=topic, partition="1") == 25
        assert _gauge("consumer_lag", topic=topic, partition="-1") is None

        learned = [n for n, b in doc["brokers"].items() if b["source"] == "learned"]
        assert learned, "no learned broker in the statistics"
        for name in learned:
            assert _gauge("kafka_broker_up", broker=name) == 1
            rtt = doc["brokers"][name]["rtt"]
            if rtt["cnt"] > 0:
                assert _gauge("kafka_broker_rtt_avg_seconds", broker=name) == pytest.approx(rtt["avg"] / 1e6)
                assert _gauge("kafka_broker_rtt_p99_seconds", broker=name) == pytest.approx(rtt["p99"] / 1e6)
        assert _gauge("kafka_broker_up", broker="GroupCoordinator") is None

        parts = doc["topics"][topic]["partitions"]
        # One consumer queue, reported under each partition: counted once, never more records
        # than the topic holds.
        ours = [p for k, p in parts.items() if k != "-1" and p["desired"]]
        assert _gauge("kafka_fetch_queue_records") == max(p["fetchq_cnt"] for p in ours)
        assert _gauge("kafka_fetch_queue_bytes") == max(p["fetchq_size"] for p in ours)
        queued = _gauge("kafka_fetch_queue_records")
        assert queued is not None
        assert queued <= 100
        assert health.readiness().body["reason"] != "Kafka broker unreachable"
        health.set_assigned(2)
        assert health.readiness().ok

        # Give the partitions up: the next statistics no longer list them as ours, and their
        # series disappear instead of freezing next to the new owner's.
        consumer.unsubscribe()
        seen = len(recorder.documents)

        def released() -> bool:
            if len(recorder.documents) <= seen:
                return False
            ours = recorder.documents[-1]["topics"].get(topic, {}).get("partitions", {})
            return not any(p["desired"] for k, p in ours.items() if k != "-1")

        _poll_until(consumer, released)
        assert _gauge("consumer_lag", topic=topic, partition="0") is None
        assert _gauge("committed_offset", topic=topic, partition="1") is None
    finally:
        consumer.close()


def test_statistics_of_an_unreachable_cluster_mark_the_broker_down() -> None:
    health = Health(publish=False)
    health.set_assigned(1)
    stats = KafkaStats(health)
    consumer = Consumer(
        {
            "bootstrap.servers": "127.0.0.1:1",  # nothing listens on port 1
            "group.id": "stats-unreachable",
            "statistics.interval.ms": 100,
            "stats_cb": stats,
            "logger": logging.getLogger("test.quiet"),
        }
    )
    try:
        deadline = time.monotonic() + 10
        while stats.documents < 2:
            assert time.monotonic() < deadline
            consumer.poll(0.1)
    finally:
        consumer.close()
    assert health.readiness().body == {"status": "not_ready", "reason": "Kafka broker unreachable"}


def test_bad_documents_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    stats = KafkaStats()
    with caplog.at_level(logging.WARNING, logger="consumer.kafka_stats"):
        stats("{not json")
        stats('["a list"]')
        stats('{"type": "consumer", "brokers": {"b/1": {"source": "learned", "rtt": {"cnt": 1}}}}')
    assert stats.documents == 0
    assert len(caplog.records) == 3
    # A producer's document shares broker names with the consumer's: it must not touch gauges.
    metrics.kafka_fetch_queue_records.set(123)
    stats('{"type": "producer", "topics": {}, "brokers": {}}')
    assert _gauge("kafka_fetch_queue_records") == 123
    assert stats.documents == 0

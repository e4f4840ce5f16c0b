"""Kafka test bed: a real broker for the session, fresh topics per test, and small helpers.

The broker is Apache Kafka itself (dev/kafka_local.py), started once per test session in a
temporary folder, unless KAFKA_BOOTSTRAP_SERVERS names one that is already running.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from dev.kafka_local import Broker

T = TypeVar("T")

# What a broker answers while it restarts: leaders and coordinators are being elected.
_RESTARTING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError._ALL_BROKERS_DOWN,
}


class KafkaBed:
    """What a test needs to know about the broker it runs against."""

    def __init__(self, bootstrap: str, broker: Broker | None) -> None:
        self.bootstrap = bootstrap
        self.broker = broker
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def create_topic(self, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
        futures = self.admin.create_topics([topic])
        futures[name].result(30)
        # Metadata can lag the creation by a moment (seconds on a loaded machine); wait until
        # every partition has a leader.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            md = self.admin.list_topics(name, timeout=5).topics.get(name)
            if (
                md is not None
                and md.error is None
                and len(md.partitions) == partitions
                and all(p.leader >= 0 for p in md.partitions.values())
            ):
                return name
            time.sleep(0.05)
        raise AssertionError(f"topic {name} has no leaders after 30 s")

    def produce(
        self,
        topic: str,
        values: list[bytes],
        *,
        keys: list[bytes | None] | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5, "acks": "all"})
        errors: list[str] = []

        def on_delivery(err: object, _msg: object) -> None:
            if err is not None:
                errors.append(str(err))

        for i, value in enumerate(values):
            key = keys[i] if keys is not None else None
            if partition is None:
                producer.produce(topic, value, key, headers=list(headers or []), on_delivery=on_delivery)
            else:
                producer.produce(
                    topic, value, key, partition, headers=list(headers or []), on_delivery=on_delivery
                )
            producer.poll(0)
        remaining = producer.flush(30)
        assert not errors, f"produce failed: {errors[:3]}"
        assert remaining == 0, f"{remaining} records not flushed"

    def consume_all(self, topic: str, expected: int, timeout: float = 30.0) -> list[Message]:
        """Read `expected` records from the start of `topic` with a throwaway group."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reader-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        try:
            while len(out) < expected and time.monotonic() < deadline:
                for m in consumer.consume(500, 0.5):
                    if m.error() is None:
                        out.append(m)
        finally:
            consumer.close()
        return out

    def end_offsets(self, topic: str) -> dict[int, int]:
        def ask(consumer: Consumer) -> dict[int, int]:
            md = consumer.list_topics(topic, timeout=10).topics[topic]
            return {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in md.partitions
            }

        return self._ask("end-offsets", ask)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """Committed offsets of `group` on `topic` (partitions without a commit are left out)."""

        def ask(consumer: Consumer) -> dict[int, int]:
            md = consumer.list_topics(topic, timeout=10).topics[topic]
            tps = consumer.committed([TopicPartition(topic, p) for p in md.partitions], timeout=10)
            return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}

        return self._ask(group, ask)

    def committed_points(self, group: str, topic: str) -> dict[int, tuple[int, str]]:
        """Committed offsets of `group` on `topic` with their metadata (the offset maps)."""

        def ask(consumer: Consumer) -> dict[int, tuple[int, str]]:
            md = consumer.list_topics(topic, timeout=10).topics[topic]
            tps = consumer.committed([TopicPartition(topic, p) for p in md.partitions], timeout=10)
            return {tp.partition: (tp.offset, tp.metadata or "") for tp in tps if tp.offset >= 0}

        return self._ask(group, ask)

    def _ask(self, group: str, question: Callable[[Consumer], T]) -> T:
        """Ask the broker, riding out a restart or a leader move (retriable errors, up to 60 s)."""
        deadline = time.monotonic() + 60
        while True:
            consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
            try:
                return question(consumer)
            except KafkaException as exc:
                err = exc.args[0]
                if not (err.retriable() or err.code() in _RESTARTING) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
            finally:
                consumer.close()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBed]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield KafkaBed(external, None)
        return
    broker = Broker(Path(tmp_path_factory.mktemp("kafka")))
    broker.start()
    try:
        yield KafkaBed(broker.bootstrap, broker)
    finally:
        broker.stop()


@pytest.fixture
def new_topic(kafka: KafkaBed, request: pytest.FixtureRequest) -> Callable[..., str]:
    """Create a uniquely named topic for this test: `new_topic(partitions=3)`."""

    def create(partitions: int = 1, suffix: str = "") -> str:
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name)[:60]
        return kafka.create_topic(f"t-{base}{suffix}-{uuid.uuid4().hex[:8]}", partitions)

    return create

"""librdkafka statistics folded into Prometheus gauges.

librdkafka already measures what an operator needs from the Kafka side (per-partition lag and
offsets, broker round-trip times, how much is prefetched) and hands it over as a JSON document
every `statistics.interval.ms` through `stats_cb`. Asking the broker for watermarks and
committed offsets ourselves would cost round trips on the poll thread; reading the statistics
costs one JSON parse per interval.

The callback runs on the poll thread, inside `consume()`/`poll()`. An exception raised there
would surface from `consume()` and stop the loop, so a malformed document is logged and skipped,
never raised.

Usage (see README, Observability):

    stats = KafkaStats(health)
    Consumer({..., "statistics.interval.ms": 15000, "stats_cb": stats})
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from . import metrics

if TYPE_CHECKING:
    from .health import Health

log = logging.getLogger(__name__)

_MICROSECONDS = 1e-6


class KafkaStats:
    """A `stats_cb` for the consumer: call it with librdkafka's statistics JSON string.

    Only consumer statistics are folded (a producer's document has the same broker names, and
    two clients writing one gauge would flap). Per-partition series are kept only for partitions
    assigned to us right now; series of partitions that went away are removed, so a partition
    that moved to another pod is not counted twice. When a `Health` is given, broker
    reachability (any broker connection up) is reported to it, which is how `/readyz` learns
    that the broker came back after an outage.
    """

    def __init__(self, health: Health | None = None) -> None:
        self._health = health
        self._partitions: set[tuple[str, str]] = set()
        self._brokers: set[str] = set()
        self.documents = 0

    def __call__(self, stats_json: str) -> None:
        try:
            stats = orjson.loads(stats_json)
            if not isinstance(stats, dict):
                raise TypeError("statistics document is not a JSON object")
            if stats.get("type") != "consumer":
                return
            self._brokers_from(stats.get("brokers") or {})
            self._partitions_from(stats.get("topics") or {})
            self.documents += 1
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("ignoring a librdkafka statistics document: %s", exc, extra={"stage": "source"})

    def _brokers_from(self, brokers: dict[str, Any]) -> None:
        seen: set[str] = set()
        any_up = False
        for name, broker in brokers.items():
            up = broker.get("state") == "UP"
            any_up = any_up or up  # any connection counts as "reachable", the coordinator's too
            # "learned" brokers are the cluster's real nodes; bootstrap entries and the logical
            # GroupCoordinator handle duplicate them, so they get no series of their own.
            if broker.get("source") != "learned":
                continue
            seen.add(name)
            metrics.kafka_broker_up.labels(broker=name).set(1 if up else 0)
            rtt = broker.get("rtt") or {}
            if rtt.get("cnt", 0) > 0:
                metrics.kafka_broker_rtt_avg.labels(broker=name).set(rtt["avg"] * _MICROSECONDS)
                metrics.kafka_broker_rtt_p99.labels(broker=name).set(rtt["p99"] * _MICROSECONDS)
        for gone in self._brokers - seen:
            for gauge in (
                metrics.kafka_broker_up,
                metrics.kafka_broker_rtt_avg,
                metrics.kafka_broker_rtt_p99,
            ):
                metrics.remove_series(gauge, gone)
        self._brokers = seen
        if self._health is not None:
            self._health.set_broker_connected(any_up)

    def _partitions_from(self, topics: dict[str, Any]) -> None:
        seen: set[tuple[str, str]] = set()
        fetchq_records = 0
        fetchq_bytes = 0
        for topic, topic_stats in topics.items():
            for partition, p in (topic_stats.get("partitions") or {}).items():
                # Partition -1 is librdkafka's internal "unassigned" queue; `desired` is false
                # for partitions of subscribed topics that belong to other group members.
                if partition == "-1" or not p.get("desired"):
                    continue
                seen.add((topic, partition))
                # Every partition's fetch queue is forwarded to the one consumer queue, and each
                # partition reports that shared queue: a sum would count it once per partition.
                fetchq_records = max(fetchq_records, int(p.get("fetchq_cnt", 0)))
                fetchq_bytes = max(fetchq_bytes, int(p.get("fetchq_size", 0)))
                lag = p.get("consumer_lag_stored", -1)
                if lag < 0:
                    lag = p.get("consumer_lag", -1)
                if lag >= 0:
                    metrics.consumer_lag.labels(topic=topic, partition=partition).set(lag)
                committed = p.get("committed_offset", -1)
                if committed >= 0:
                    metrics.committed_offset.labels(topic=topic, partition=partition).set(committed)
        metrics.kafka_fetch_queue_records.set(fetchq_records)
        metrics.kafka_fetch_queue_bytes.set(fetchq_bytes)
        gone = self._partitions - seen
        if gone:
            metrics.forget_partitions((topic, int(partition)) for topic, partition in gone)
        self._partitions = seen

"""The poll loop that drives every stage, and the service's start-up and shutdown.

One thread runs everything left of the HTTP calls: consume, decode, route, transform, batch,
hand batches to the deliverer, read its results, write dead letters, store offsets and apply
backpressure. It never blocks for longer than one short consume timeout, so the group session
stays healthy however slow CleverTap is, and a SIGTERM is noticed at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import KafkaException, Message, Producer

from . import metrics
from .batch import Batch, Batcher, UnencodableRecordError
from .codec import DecodeError
from .consent import withheld
from .deliver import BatchResult
from .dlq import DeadLetters, Failure
from .offsets import Entry, OffsetTracker, TopicPartitionKey
from .route import Route, Router
from .settings import Settings
from .source import PartitionSet, RebalanceListener, Source, message_headers
from .transform import Accepted, Filtered

log = logging.getLogger(__name__)

TRANSIENT_DECODE_BACKOFF_S = 5.0
# Completions are committed (watermark + offset map) this soon: a crash repeats at most what
# finished in the last tenth of a second, plus what was in flight.
COMMIT_EVERY_S = 0.1


class Decoder(Protocol):
    def decode_message(self, value: bytes | None) -> dict[str, Any]: ...


class Deliverer(Protocol):
    def submit(self, batch: Batch) -> None: ...
    def results(self) -> list[BatchResult]: ...
    def in_flight(self) -> int: ...
    def close(self, timeout: float) -> list[Batch]: ...


class DeadLetterSink(Protocol):
    """Where failed messages go: `consumer.dlq.DeadLetters` (the DLQ topic), or a dry run's
    recorder. `on_written` (given at construction) finishes each message once it is safe."""

    def send(self, entry: Entry, failure: Failure) -> None: ...
    def poll(self) -> None: ...
    def pending(self) -> int: ...
    def flush(self, timeout: float) -> int: ...


class Health(Protocol):
    def beat(self) -> None: ...
    def set_assigned(self, partitions: int) -> None: ...
    def set_broker_connected(self, connected: bool) -> None: ...
    def set_shutting_down(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    topics: tuple[str, ...]
    group_id: str
    dlq_topic: str
    batch_max_records: int = 1000
    batch_max_bytes: int = 4 * 1024 * 1024
    batch_linger_s: float = 0.2
    max_in_flight_records: int = 20_000
    max_in_flight_bytes: int = 64 * 1024 * 1024
    drain_timeout_s: float = 20.0
    revoke_timeout_s: float = 10.0
    poll_records: int = 1000
    poll_timeout_s: float = 0.1
    only_destinations: frozenset[str] | None = None  # replay: deliver only these destinations
    commit: bool = True  # the commit policy: False for a dry run, which leaves no offsets

    @classmethod
    def from_settings(cls, s: Settings) -> PipelineOptions:
        return cls(
            topics=s.kafka_topics,
            group_id=s.kafka_group_id,
            dlq_topic=s.dlq_topic,
            batch_max_records=s.batch_max_records,
            batch_max_bytes=s.batch_max_bytes,
            batch_linger_s=s.batch_linger_ms / 1000,
            max_in_flight_records=s.max_in_flight_records,
            max_in_flight_bytes=s.max_in_flight_bytes,
            drain_timeout_s=s.drain_timeout_seconds,
            revoke_timeout_s=s.revoke_timeout_seconds,
        )


def consumer_config(s: Settings, client: dict[str, Any]) -> dict[str, Any]:
    """The group member's librdkafka settings: at-least-once, cooperative, bounded prefetch."""
    conf: dict[str, Any] = {
        **client,
        "group.id": s.kafka_group_id,
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.commit.interval.ms": s.commit_interval_ms,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": s.kafka_session_timeout_ms,
        "max.poll.interval.ms": 300_000,
        # librdkafka's prefetch buffer, one queue for all assigned partitions. 2 MB keeps the
        # loop fed (it decodes a few MB a second) and leaves memory to the in-flight limits.
        # A full queue postpones the next fetch by fetch.queue.backoff.ms (default 1 s), which
        # with a queue this small starves the loop; 20 ms refills it as fast as it drains.
        "queued.max.messages.kbytes": 2048,
        "fetch.queue.backoff.ms": 20,
        "isolation.level": "read_committed",
        "statistics.interval.ms": 15_000,
    }
    if s.kafka_group_instance_id:
        conf["group.instance.id"] = s.kafka_group_instance_id
    # `client` carries KAFKA_EXTRA_CONFIG already; here it also overrides the consumer defaults
    # above, so an operator can retune prefetch or timeouts without a release.
    conf.update(s.kafka_extra_config)
    if conf.get("group.protocol") == "consumer":
        # KIP-848: the broker assigns partitions and owns session timeouts.
        conf.pop("partition.assignment.strategy", None)
        conf.pop("session.timeout.ms", None)
    return conf


def producer_config(client: dict[str, Any]) -> dict[str, Any]:
    """The DLQ producer: nothing counts as dead-lettered until every replica has it."""
    return {
        **client,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 20,
        "compression.type": "lz4",
        "message.timeout.ms": 120_000,
    }


@dataclass(slots=True)
class _Tally:
    """Per-message counts gathered during one loop turn: a labelled metric costs about a
    microsecond per update, which at tens of thousands of events a second is worth saving."""

    consumed: Counter[str] = field(default_factory=Counter)
    consumed_bytes: Counter[str] = field(default_factory=Counter)
    decoded: Counter[str] = field(default_factory=Counter)
    transformed: Counter[str] = field(default_factory=Counter)
    filtered: Counter[tuple[str, str]] = field(default_factory=Counter)  # (destination, reason)
    fixes: Counter[tuple[str, str]] = field(default_factory=Counter)
    finished: Counter[str] = field(default_factory=Counter)

    def publish(self) -> None:
        for counts, metric in (
            (self.consumed, metrics.records_consumed),
            (self.consumed_bytes, metrics.consumed_bytes),
            (self.decoded, metrics.records_decoded),
            (self.transformed, metrics.records_transformed),
            (self.finished, metrics.records_finished),
        ):
            for label, n in counts.items():
                metric.labels(label).inc(n)
            counts.clear()
        for (destination, reason), n in self.filtered.items():
            metrics.events_filtered.labels(destination, reason).inc(n)
        self.filtered.clear()
        for (kind, action), n in self.fixes.items():
            metrics.transform_fixes.labels(kind, action).inc(n)
        self.fixes.clear()


class Pipeline(RebalanceListener):
    """Wires the stages together on the poll thread. See docs/architecture.md."""

    def __init__(
        self,
        options: PipelineOptions,
        *,
        consumer_conf: dict[str, Any],
        producer: Producer,
        decoder: Decoder,
        router: Router,
        deliverer: Deliverer,
        health: Health | None = None,
        clock: Callable[[], float] = time.monotonic,
        dead_letters: Callable[[Callable[[Entry], None]], DeadLetterSink] | None = None,
    ) -> None:
        self.options = options
        self._clock = clock
        self._decoder = decoder
        self._router = router
        self._deliverer = deliverer
        self._health = health
        self._tracker = OffsetTracker()
        self._batcher = Batcher(options.batch_max_records, options.batch_max_bytes, options.batch_linger_s)
        self._dlq: DeadLetterSink = (
            dead_letters(self._finish)
            if dead_letters is not None
            else DeadLetters(producer, options.dlq_topic, options.group_id, self._finish)
        )
        self._producer = producer
        self._source = Source(consumer_conf, options.topics, self)
        self._tally = _Tally()
        self._newest: dict[TopicPartitionKey, int] = {}
        self._until: dict[TopicPartitionKey, int] | None = None  # replay: where the range ends
        self._position: dict[TopicPartitionKey, int] = {}
        self.stats: Counter[str] = Counter()
        self._next_commit = 0.0
        self.replay_total: int | None = None  # records in the replayed range, once known

    # --- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Process until `stop` is set, then drain, commit and leave the group."""
        self._source.subscribe()
        try:
            while not stop.is_set():
                self.step()
        finally:
            self._shutdown()

    def replay(self, stop: threading.Event, since_ms: int, until_ms: int | None = None) -> bool:
        """Deliver the records between two timestamps again, then stop.

        Reads every partition from its first offset at `since_ms` up to the offsets at
        `until_ms` (or the end as it is now), so the run is bounded. Returns True when the
        whole range was processed, False when `stop` cut it short.
        """
        start = self._source.offsets_at(since_ms)
        self._until = self._source.offsets_at(until_ms)
        self._position = dict(start)
        self._source.assign(start)
        self.replay_total = sum(self._until[tp] - o for tp, o in start.items())
        log.info("replaying", extra={"records": self.replay_total})
        try:
            while not stop.is_set():
                if self._replayed():
                    return True
                self.step()
            return False
        finally:
            self._shutdown()

    def _replayed(self) -> bool:
        assert self._until is not None
        reached = all(self._position.get(tp, 0) >= end for tp, end in self._until.items())
        return reached and not self._tracker.pending() and not self._batcher and not self._dlq.pending()

    def step(self) -> None:
        messages = self._source.poll(self.options.poll_records, self.options.poll_timeout_s)
        now = self._clock()
        if messages:
            self._ingest(messages, now)
        for batch in self._batcher.due(now):
            self._deliverer.submit(batch)
        self._drain(now)
        if now >= self._next_commit:
            self._next_commit = now + COMMIT_EVERY_S
            self._commit()
        self._flow_control()
        self._publish()
        if self._health is not None:
            self._health.beat()

    def _ingest(self, messages: list[Message], now: float) -> None:
        tally = self._tally
        until = self._until
        for m in messages:
            topic, partition, offset = m.topic() or "", m.partition() or 0, m.offset() or 0
            if self._source.is_held((topic, partition)):
                continue  # re-read after the hold; never registered, never committed
            if self._tracker.already_done((topic, partition), offset):
                # The partition's previous owner finished it (its commit's offset map): count it
                # towards the watermark, send nothing.
                tally.consumed[topic] += 1
                done = Entry(topic, partition, offset, None, None, [], None)
                self._tracker.register(done)
                self._finish(done, "already_done")
                continue
            if until is not None:
                tp = (topic, partition)
                self._position[tp] = offset + 1
                if offset >= until.get(tp, 0):
                    continue  # past the replayed range
            value = m.value()
            tally.consumed[topic] += 1
            tally.consumed_bytes[topic] += len(value or b"")
            _, ts = m.timestamp()
            entry = Entry(
                topic, partition, offset, m.key(), value, message_headers(m), ts if ts > 0 else None
            )
            try:
                message = self._decoder.decode_message(value)
            except DecodeError as exc:
                if exc.transient:
                    log.warning(
                        "decode failed, will retry",
                        extra={
                            "stage": "decode",
                            "topic": topic,
                            "partition": partition,
                            "offset": offset,
                            "reason": exc.reason,
                        },
                    )
                    metrics.decode_holds.labels(exc.reason).inc()
                    self._source.hold((topic, partition), offset, now + TRANSIENT_DECODE_BACKOFF_S)
                    continue
                self._tracker.register(entry)
                metrics.decode_failures.labels(exc.reason).inc()
                self._reject(entry, Failure("decode", exc.reason, exc.message))
                continue
            tally.decoded[topic] += 1
            self._tracker.register(entry)
            self._process(entry, message, now)

    def _process(self, entry: Entry, message: dict[str, Any], now: float) -> None:
        route = self._router.route(message, entry.headers, entry.topic)
        if isinstance(route, Failure):
            self._reject(entry, route)
            return
        entry.destination_id = route.destination_id
        only = self.options.only_destinations
        if only is not None and route.destination_id not in only:
            self._tally.filtered[(route.destination_id, "not_replayed")] += 1
            self._finish(entry, "filtered")
            return
        reason = withheld(message, route.gate)
        if reason is not None:  # RudderStack's server drops these before its transformer too
            self._tally.filtered[(route.destination_id, reason)] += 1
            self._finish(entry, "filtered")
            return
        try:
            result = route.transform(message, route.config)
        except Exception as exc:  # a bug must cost one message, never the consumer
            log.exception(
                "transform raised", extra={"stage": "transform", "destination": route.destination_id}
            )
            self._reject(entry, Failure("transform", "internal_error", f"{type(exc).__name__} in transform"))
            return
        if isinstance(result, Accepted):
            self._accept(entry, route, result, now)
        elif isinstance(result, Filtered):
            self._tally.filtered[(route.destination_id, result.reason)] += 1
            self._finish(entry, "filtered")
        else:
            self._reject(entry, Failure("transform", result.reason, result.message))

    def _accept(self, entry: Entry, route: Route, result: Accepted, now: float) -> None:
        for fix in result.fixes:
            self._tally.fixes[(fix.kind, fix.action)] += 1
        if not result.records:
            self._finish(entry, "filtered")
            return
        self._tally.transformed[route.destination_id] += len(result.records)
        entry.outstanding = len(result.records)
        for i, record in enumerate(result.records):
            try:
                closed = self._batcher.add(route.target, record, entry, now)
            except UnencodableRecordError as exc:  # records already batched still report back first
                entry.outstanding -= len(result.records) - i
                metrics.events_rejected.labels(exc.failure.stage, exc.failure.reason).inc()
                entry.failures.append(exc.failure)
                if entry.outstanding == 0:
                    self._dlq.send(entry, exc.failure)
                return
            for batch in closed:
                self._deliverer.submit(batch)

    def _reject(self, entry: Entry, failure: Failure) -> None:
        metrics.events_rejected.labels(failure.stage, failure.reason).inc()
        entry.failures.append(failure)
        self._dlq.send(entry, failure)

    # --- results --------------------------------------------------------------------------------

    def _drain(self, now: float) -> None:
        for result in self._deliverer.results():
            for item, outcome in zip(result.batch.items, result.outcomes, strict=True):
                entry = item.entry
                if entry.dropped:
                    continue
                if outcome is not None:
                    entry.failures.append(outcome)
                entry.outstanding -= 1
                if entry.outstanding == 0:
                    if entry.failures:
                        self._dlq.send(entry, entry.failures[0])
                    else:
                        self._finish(entry, "delivered")
        self._dlq.poll()
        self._source.release_due(now)

    def _finish(self, entry: Entry, outcome: str = "dead_lettered") -> None:
        """The message is done (`outcome`: one of metrics.FINISH_OUTCOMES)."""
        if entry.done or entry.dropped:
            return
        self.stats[outcome] += 1
        self._tally.finished[outcome] += 1
        self._tracker.finish(entry)
        if entry.timestamp_ms is not None:
            tp = (entry.topic, entry.partition)
            if entry.timestamp_ms > self._newest.get(tp, 0):
                self._newest[tp] = entry.timestamp_ms

    def _publish(self) -> None:
        """Per-message counts reach Prometheus once per loop turn, not once per message."""
        self.stats["consumed"] += sum(self._tally.consumed.values())
        self._tally.publish()
        for (topic, partition), ts_ms in self._newest.items():
            metrics.last_processed_timestamp.labels(topic, str(partition)).set(ts_ms / 1000)
        metrics.in_flight_records.set(self._tracker.in_flight_records)
        metrics.in_flight_bytes.set(self._tracker.in_flight_bytes)

    def _flow_control(self) -> None:
        t, o = self._tracker, self.options
        if not self._source.paused:
            if t.in_flight_records >= o.max_in_flight_records or t.in_flight_bytes >= o.max_in_flight_bytes:
                log.info("pausing consumption", extra={"in_flight_records": t.in_flight_records})
                self._source.pause_all()
        elif (
            t.in_flight_records <= o.max_in_flight_records // 2
            and t.in_flight_bytes <= o.max_in_flight_bytes // 2
        ):
            log.info("resuming consumption", extra={"in_flight_records": t.in_flight_records})
            self._source.resume_all()

    # --- rebalances -----------------------------------------------------------------------------

    def assigned(self, partitions: PartitionSet) -> None:
        """Read the committed offset maps, so what the previous owner finished is skipped."""
        skipped = 0
        for tp, (offset, metadata) in self._source.committed(partitions).items():
            skipped += self._tracker.restore(tp, offset, metadata)
        if skipped:
            log.info(
                "offset maps: records already done above the committed offsets", extra={"records": skipped}
            )

    def _commit(self, partitions: PartitionSet | None = None) -> None:
        """Commit the watermarks and offset maps of partitions where anything finished (or of
        `partitions`, on revocation and shutdown). A dry run commits nothing."""
        if not self.options.commit:
            return
        limit = self._source.metadata_limit
        points = (
            self._tracker.take_commits(limit)
            if partitions is None
            else self._tracker.commit_points(partitions, limit)
        )
        self._source.commit(points)

    def revoked(self, partitions: PartitionSet) -> dict[TopicPartitionKey, int]:
        """Give the revoked partitions' batches a bounded chance to finish, then let them go."""
        for batch in self._batcher.flush():
            self._deliverer.submit(batch)
        deadline = self._clock() + self.options.revoke_timeout_s
        while self._tracker.pending(partitions) and self._clock() < deadline:
            self._drain(self._clock())
            time.sleep(0.005)
        self._commit(partitions)  # with the offset maps; nothing left for the source to store
        released = self._tracker.drop(partitions)
        self._forget(partitions)
        if released:
            log.warning(
                "revoked partitions had unfinished messages; their new owner re-reads them",
                extra={"unfinished": released},
            )
        return {}

    def lost(self, partitions: PartitionSet) -> None:
        self._batcher.discard(partitions)
        self._tracker.drop(partitions)
        self._forget(partitions)

    def _forget(self, partitions: PartitionSet) -> None:
        self._publish()  # flush what these partitions finished before their series go away
        for tp in partitions:
            self._newest.pop(tp, None)

    def assignment_changed(self, partitions: int) -> None:
        if self._health is not None:
            self._health.set_assigned(partitions)

    def brokers_down(self) -> None:
        if self._health is not None:
            self._health.set_broker_connected(False)

    # --- shutdown -------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Stop fetching, deliver what is in flight within the drain timeout, commit, leave.

        After a fatal Kafka error the consumer can do nothing more: deliveries still stop
        cleanly, nothing is committed, and the next owner re-reads the unfinished messages.
        """
        if self._health is not None:
            self._health.set_shutting_down()
        deadline = self._clock() + self.options.drain_timeout_s
        usable = self._source.fatal is None
        if usable:
            self._source.pause_all()
        for batch in self._batcher.flush():
            self._deliverer.submit(batch)
        while usable and (self._tracker.pending() or self._dlq.pending()) and self._clock() < deadline:
            try:
                self._source.poll(self.options.poll_records, 0.05)  # serve the group; paused: no records
            except KafkaException:
                usable = False
                break
            self._drain(self._clock())
            self._commit()
        unfinished = self._deliverer.close(max(0.1, deadline - self._clock()))
        self._drain(self._clock())
        self._dlq.flush(max(0.1, deadline - self._clock()))
        self._publish()
        if usable:
            self._commit(set(self._source.assignment))
            self._source.close()
        self._producer.flush(5)
        log.info(
            "stopped",
            extra={
                "unfinished_batches": len(unfinished),
                "unfinished_messages": self._tracker.pending(),
                **dict(self.stats),
            },
        )

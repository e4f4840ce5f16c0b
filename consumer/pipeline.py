"""The orchestrator: runs the chain of steps (consumer.steps) on the poll thread, and owns the
lifecycle of the Kafka consumer, the deliverer and the DLQ producer.

    Source.poll ─► Process (decode → route → transform → batch) ─► Deliver ─► Commit
                      ▲ MessageRejected: keep the batch, pause the source, offer it again

It never blocks for longer than one short consume timeout, so the group session stays healthy
however slow CleverTap is, and a SIGTERM is noticed at once. Replay is a `StopPolicy` (the range
and when it is done), the dry run a `CommitPolicy` that commits nothing; the loop is the same.

Shutdown order (one owner): stop fetching (pause) → flush open batches → drain in-flight work
within DRAIN_TIMEOUT (serving the group meanwhile) → close the deliverer → flush dead letters →
final commit → close the consumer (leave the group) → flush the producer. The service
(consumer.service) owns the rest: health/metrics server, reloader and deletion thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import KafkaException, Message, Producer

from .batch import Batcher
from .contracts import CommitPoint, TopicPartitionKey
from .dlq import DeadLetters
from .offsets import Entry
from .route import Router
from .settings import Settings
from .source import PartitionSet, RebalanceListener, Source
from .steps import (
    COMMIT_EVERY_S,
    TRANSIENT_DECODE_BACKOFF_S,
    Commit,
    CommitPolicy,
    DeadLetterSink,
    Decoder,
    Deliver,
    Deliverer,
    Ledger,
    MessageRejected,
    NoCommits,
    Process,
    ReplayRange,
    RunUntilStopped,
    StopPolicy,
)

__all__ = [
    "COMMIT_EVERY_S",
    "TRANSIENT_DECODE_BACKOFF_S",
    "DeadLetterSink",
    "Decoder",
    "Deliverer",
    "Health",
    "Pipeline",
    "PipelineOptions",
]

log = logging.getLogger(__name__)

# Messages offered to the chain at once; the chain is polled (results drained, commits made)
# between slices, so a long turn never holds completions back from the commit for long.
OFFER_SLICE = 100
# While a delivery result is on its way, a consume waits at most this long for records, so the
# result is drained and committed within about this long of its reply (not a whole consume
# timeout later: a kill -9 in between would repeat it).
RESULT_WAIT_S = 0.01


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
    max_in_flight_records_per_account: int | None = None  # None: half of max_in_flight_records
    max_in_flight_bytes_per_account: int | None = None
    max_tracked_per_partition: int = 20_000
    drain_timeout_s: float = 20.0
    revoke_timeout_s: float = 10.0
    commit_interval_s: float = COMMIT_EVERY_S
    poll_records: int = 1000
    poll_timeout_s: float = 0.1
    only_destinations: frozenset[str] | None = None  # replay: deliver only these destinations

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
            max_in_flight_records_per_account=s.max_in_flight_records_per_account,
            max_in_flight_bytes_per_account=s.max_in_flight_bytes_per_account,
            max_tracked_per_partition=s.max_tracked_offsets_per_partition,
            drain_timeout_s=s.drain_timeout_seconds,
            revoke_timeout_s=s.revoke_timeout_seconds,
            commit_interval_s=s.commit_interval_ms / 1000,
        )


class _SourceCommits:
    """The commit policy of the service: watermarks and offset maps to the group."""

    def __init__(self, source: Source) -> None:
        self._source = source

    def commit(self, points: dict[TopicPartitionKey, CommitPoint]) -> None:
        self._source.commit(points)


class Pipeline(RebalanceListener):
    """Builds the chain Process → Deliver → Commit and drives it. See docs/architecture.md."""

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
        commits: CommitPolicy | None = None,
    ) -> None:
        self.options = options
        self._clock = clock
        self._health = health
        self._producer = producer
        self._ledger = ledger = Ledger()
        self._dlq: DeadLetterSink = (
            dead_letters(ledger.finish)
            if dead_letters is not None
            else DeadLetters(producer, options.dlq_topic, options.group_id, ledger.finish)
        )
        self._source = Source(consumer_conf, options.topics, self)
        source = self._source
        # Where commit points go: `commits` if given (a dry run's NoCommits), else the group.
        policy: CommitPolicy = commits or _SourceCommits(source)
        self._commit_step = Commit(
            ledger, policy, lambda: source.metadata_limit, clock, options.commit_interval_s
        )
        self._deliver = Deliver(deliverer, self._dlq, ledger, self._commit_step)
        self._process = Process(
            decoder=decoder,
            router=router,
            batcher=Batcher(options.batch_max_records, options.batch_max_bytes, options.batch_linger_s),
            dlq=self._dlq,
            holds=source,
            ledger=ledger,
            next_step=self._deliver,
            max_in_flight_records=options.max_in_flight_records,
            max_in_flight_bytes=options.max_in_flight_bytes,
            max_in_flight_records_per_account=options.max_in_flight_records_per_account,
            max_in_flight_bytes_per_account=options.max_in_flight_bytes_per_account,
            max_tracked_per_partition=options.max_tracked_per_partition,
            only_destinations=options.only_destinations,
            clock=clock,
        )
        self._stop_policy: StopPolicy = RunUntilStopped()
        self._carried: list[Message] | None = None  # a consumed batch the chain rejected
        self.replay_total: int | None = None  # records in the replayed range, once known

    @property
    def stats(self) -> Counter[str]:
        """Totals of this run: consumed and one count per finish outcome."""
        return self._ledger.stats

    # --- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Process until `stop` is set, then drain, commit and leave the group."""
        self._source.subscribe()
        self._loop(stop)

    def replay(self, stop: threading.Event, since_ms: int, until_ms: int | None = None) -> bool:
        """Deliver the records between two timestamps again, then stop.

        Reads every partition from its first offset at `since_ms` up to the offsets at
        `until_ms` (or the end as it is now), so the run is bounded. Returns True when the
        whole range was processed, False when `stop` cut it short.
        """
        start = self._source.offsets_at(since_ms)
        policy = ReplayRange(start, self._source.offsets_at(until_ms))
        self._stop_policy = policy
        self._source.assign(start)
        self.replay_total = policy.total
        log.info("replaying", extra={"records": self.replay_total})
        return self._loop(stop)

    def _loop(self, stop: threading.Event) -> bool:
        """True when the stop policy says the run is complete, False when `stop` ended it."""
        try:
            while not stop.is_set():
                if self._stop_policy.done(self._idle()):
                    return True
                self.step()
            return False
        finally:
            self._shutdown()

    def _idle(self) -> bool:
        return (
            self._carried is None
            and not self._ledger.tracker.pending()
            and not self._process.pending()
            and not self._dlq.pending()
            and not self._source.has_holds()
        )

    def step(self) -> None:
        """One turn: consume (paused while a batch is rejected: this only serves the group),
        offer the batch to the chain, then poll the chain."""
        timeout = self.options.poll_timeout_s
        if timeout > RESULT_WAIT_S and self._deliver.expecting():
            timeout = RESULT_WAIT_S
        due = self._commit_step.due_in()
        if due is not None and due < timeout:
            timeout = due
        messages = self._source.poll(self.options.poll_records, timeout)
        if messages:
            messages = self._stop_policy.admit(messages)
        if self._carried is not None:
            # Offered again even when empty (a revocation may have taken all of it): acceptance
            # is what resumes the source.
            self._carried.extend(messages)  # e.g. a fresh partition's first records before its pause
            self._offer(self._carried)
        elif messages:
            self._offer(messages)
        self._process.poll()
        self._ledger.publish()
        if self._health is not None:
            self._health.beat()

    def _offer(self, messages: list[Message]) -> None:
        """Offer `messages` OFFER_SLICE at a time, polling the chain between slices: a consumed
        batch can take the poll thread a second on a busy machine, and deliveries that finish
        meanwhile must still be committed every commit interval (a kill -9 repeats what finished
        but was not committed yet). What a slice did not take is kept with the rest, for the
        next turn."""
        process = self._process
        for start in range(0, max(1, len(messages)), OFFER_SLICE):
            if start:
                process.poll()
            chunk = messages[start : start + OFFER_SLICE]
            try:
                process.submit(chunk)
            except MessageRejected as exc:  # backpressure: keep them, stop fetching, offer them next turn
                if self._carried is None:
                    self._source.pause_all()
                rest = chunk if exc.rest is None else exc.rest  # what was not taken
                self._carried = [*rest, *messages[start + OFFER_SLICE :]]
                return
        if self._carried is not None:
            self._carried = None
            self._source.resume_all()

    # --- rebalances -----------------------------------------------------------------------------

    def assigned(self, partitions: PartitionSet) -> None:
        """Read the committed offset maps, so what the previous owner finished is skipped."""
        skipped = 0
        tracker = self._ledger.tracker
        for tp, (offset, metadata) in self._source.committed(partitions).items():
            skipped += tracker.restore(tp, offset, metadata)
        if skipped:
            log.info(
                "offset maps: records already done above the committed offsets", extra={"records": skipped}
            )

    def revoked(self, partitions: PartitionSet) -> dict[TopicPartitionKey, int]:
        """Give the revoked partitions' batches a bounded chance to finish, then let them go."""
        self._process.flush()
        tracker = self._ledger.tracker
        deadline = self._clock() + self.options.revoke_timeout_s
        while tracker.pending(partitions, deferred=False) and self._clock() < deadline:
            self._deliver.drain()
            time.sleep(0.005)
        self._commit_step.commit(partitions)  # with the offset maps; nothing left to store
        released = tracker.drop(partitions)
        self._forget(partitions)
        if released:
            log.warning(
                "revoked partitions had unfinished messages; their new owner re-reads them",
                extra={"unfinished": released},
            )
        return {}

    def lost(self, partitions: PartitionSet) -> None:
        self._process.discard(partitions)
        self._ledger.tracker.drop(partitions)
        self._forget(partitions)

    def _forget(self, partitions: PartitionSet) -> None:
        if self._carried is not None:  # a rejected batch keeps only partitions we still own
            self._carried = [
                m for m in self._carried if (m.topic() or "", m.partition() or 0) not in partitions
            ]
        self._process.forget(partitions)
        self._ledger.forget(partitions)

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
        self._carried = None  # never registered: the next owner reads them
        self._process.flush()
        while usable and self._deliver.pending() and self._clock() < deadline:
            try:
                self._source.poll(self.options.poll_records, 0.05)  # serve the group; paused: no records
            except KafkaException:
                usable = False
                break
            self._deliver.poll()  # drain + periodic commit
        if not usable:
            self._commit_step = Commit(self._ledger, NoCommits(), lambda: 0, self._clock)
            self._deliver.next = self._commit_step
        self._process.join(max(0.1, deadline - self._clock()))  # close deliverer, DLQ, commit
        self._ledger.publish()
        if usable:
            self._commit_step.commit(set(self._source.assignment))
            self._source.close()
        self._producer.flush(5)
        log.info(
            "stopped",
            extra={"unfinished_messages": self._ledger.tracker.pending(), **dict(self.stats)},
        )

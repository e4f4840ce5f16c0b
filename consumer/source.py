"""The source stage: one member of the consumer group, driven from the poll thread only.

confluent-kafka serialises Consumer calls across threads (a call from another thread waits
behind a blocked `consume()`), so every Consumer call lives here and runs on the poll thread.
Offsets are *stored* here once their messages are done and librdkafka commits stored offsets in
the background, on revocation and on close (`enable.auto.offset.store=false`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from . import metrics, offset_map
from .contracts import NO_HEADERS, CommitPoint, Headers, TopicPartitionKey

if TYPE_CHECKING:
    from .settings import Settings

log = logging.getLogger(__name__)

PartitionSet = set[TopicPartitionKey]


def consumer_config(s: Settings, client: dict[str, Any]) -> dict[str, Any]:
    """The group member's librdkafka settings (this stage owns the consumer): at-least-once,
    cooperative, bounded prefetch."""
    conf: dict[str, Any] = {
        **client,
        "group.id": s.kafka_group_id,
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        # The pipeline commits (with offset maps) itself as things finish; librdkafka's
        # auto-commit of the same stored offsets is the backstop on revocation and close, and
        # on its own period finds nothing new to send.
        "auto.commit.interval.ms": max(1000, s.commit_interval_ms),
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


class RebalanceListener:
    """What the pipeline does when partitions come and go (called on the poll thread)."""

    def assigned(self, partitions: PartitionSet) -> None:  # pragma: no cover - interface
        """New partitions are ours."""

    def revoked(self, partitions: PartitionSet) -> dict[TopicPartitionKey, int]:  # pragma: no cover
        """Partitions are about to go: finish what can be finished; return offsets to store."""
        return {}

    def lost(self, partitions: PartitionSet) -> None:  # pragma: no cover - interface
        """Partitions are already gone (session timeout, fencing): forget them, commit nothing."""

    def assignment_changed(self, partitions: int) -> None:  # pragma: no cover - interface
        """The group answered: we now own `partitions` partitions (0 is a valid answer)."""

    def brokers_down(self) -> None:  # pragma: no cover - interface
        """librdkafka lost every broker connection."""


def message_headers(message: Message) -> Headers:
    """A consumed record's headers as (name, bytes) pairs, whatever form the client gave them in."""
    raw = message.headers()
    if not raw:
        return NO_HEADERS
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in pairs]


def _keys(partitions: Sequence[TopicPartition]) -> PartitionSet:
    return {(p.topic, p.partition) for p in partitions}


class Source:
    def __init__(self, config: dict[str, Any], topics: Sequence[str], listener: RebalanceListener) -> None:
        self._topics = list(topics)
        self._listener = listener
        self._consumer = Consumer(
            {"logger": log, **config, "on_commit": self._on_commit, "error_cb": self._on_error}
        )
        self.assignment: PartitionSet = set()
        self.paused = False
        self._fresh: PartitionSet = set()
        self._held: dict[TopicPartitionKey, float] = {}
        self.fatal: KafkaError | None = None
        # Lowered to 0 (plain watermark commits) if the broker's offset.metadata.max.bytes is
        # smaller than Kafka's default and it refuses our offset maps.
        self.metadata_limit = offset_map.MAX_METADATA_BYTES

    # --- group membership --------------------------------------------------------------------

    def subscribe(self) -> None:
        self._consumer.subscribe(
            self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = _keys(partitions)
        if not tps:  # a member with nothing to do still has an answer from the group
            self._listener.assignment_changed(len(self.assignment))
            return
        metrics.rebalances.labels("assigned").inc()
        self.assignment |= tps
        # Pause state survives a revoke/re-assign cycle in librdkafka; set it explicitly once
        # the binding has assigned the partitions (right after this consume() call returns).
        self._fresh |= tps
        self._update_assigned_gauge()
        log.info("partitions assigned", extra={"partitions": sorted(f"{t}[{p}]" for t, p in tps)})
        self._listener.assigned(tps)
        self._listener.assignment_changed(len(self.assignment))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = _keys(partitions)
        if not tps:
            return
        metrics.rebalances.labels("revoked").inc()
        offsets = self._listener.revoked(tps)
        self.store(offsets)  # still assigned inside the callback; librdkafka commits on revoke
        self._forget(tps)
        log.info("partitions revoked", extra={"partitions": sorted(f"{t}[{p}]" for t, p in tps)})

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = _keys(partitions)
        metrics.rebalances.labels("lost").inc()
        self._listener.lost(tps)
        self._forget(tps)
        log.warning("partitions lost", extra={"partitions": sorted(f"{t}[{p}]" for t, p in tps)})

    def _forget(self, tps: PartitionSet) -> None:
        self.assignment -= tps
        self._fresh -= tps
        for tp in tps:
            self._held.pop(tp, None)
        self._update_assigned_gauge()
        metrics.forget_partitions(tps)
        self._listener.assignment_changed(len(self.assignment))

    def _update_assigned_gauge(self) -> None:
        counts: dict[str, int] = dict.fromkeys(self._topics, 0)
        for topic, _ in self.assignment:
            counts[topic] = counts.get(topic, 0) + 1
        for topic, n in counts.items():
            metrics.assigned_partitions.labels(topic).set(n)

    def assign(self, start: dict[TopicPartitionKey, int]) -> None:
        """Read the given partitions from the given offsets, outside any group rebalancing
        (replays: the live group's assignment and offsets are left alone)."""
        self._consumer.assign([TopicPartition(t, p, o) for (t, p), o in start.items()])
        self.assignment = set(start)
        self._update_assigned_gauge()
        self._listener.assignment_changed(len(self.assignment))

    def partitions(self) -> list[TopicPartitionKey]:
        """Every partition of the subscribed topics, from the broker's metadata."""
        out = []
        for topic in self._topics:
            md = self._consumer.list_topics(topic, timeout=10).topics.get(topic)
            if md is None or md.error is not None:
                raise KafkaException(
                    md.error if md is not None else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
                )
            out += [(topic, p) for p in sorted(md.partitions)]
        return out

    def offsets_at(self, timestamp_ms: int | None) -> dict[TopicPartitionKey, int]:
        """Per partition, the first offset at or after `timestamp_ms` (None: the end).

        A partition with nothing that recent answers its end, so a range ending in the future
        simply reads to the end.
        """
        tps = self.partitions()
        ends = {tp: self._consumer.get_watermark_offsets(TopicPartition(*tp), timeout=10)[1] for tp in tps}
        if timestamp_ms is None:
            return ends
        return first_offsets_at(self._consumer, timestamp_ms, ends, timeout=10)

    # --- callbacks from librdkafka (served inside consume/poll on this thread) ----------------

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None and err.code() == KafkaError._NO_OFFSET:
            return
        failed = [p for p in partitions if p.error is not None]
        too_large = KafkaError.OFFSET_METADATA_TOO_LARGE
        if self.metadata_limit and any(
            e is not None and e.code() == too_large for e in [err, *(p.error for p in failed)]
        ):
            self.metadata_limit = 0
            log.warning("broker refused the offset map as too large; committing plain watermarks from now on")
        if err is not None or failed:
            metrics.commits.labels("failure").inc()
            detail = err.str() if err is not None else str(failed[0].error)
            log.warning("offset commit failed", extra={"error": detail, "partitions": len(failed)})
            return
        metrics.commits.labels("success").inc()

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self.fatal = err
            log.error("fatal Kafka error", extra={"error": err.str()})
        elif err.code() == KafkaError._ALL_BROKERS_DOWN:
            log.warning("all brokers down", extra={"error": err.str()})
            self._listener.brokers_down()
        else:
            log.debug("Kafka client error", extra={"error": err.str()})

    # --- the poll loop's calls ------------------------------------------------------------------

    def poll(self, max_messages: int, timeout: float) -> list[Message]:
        """Consume up to `max_messages`; error events are handled here, never returned."""
        batch = self._consumer.consume(max_messages, timeout)
        if self._fresh:
            fresh = [TopicPartition(t, p) for t, p in self._fresh if (t, p) not in self._held]
            self._fresh.clear()
            if fresh:
                (self._consumer.pause if self.paused else self._consumer.resume)(fresh)
        if self.fatal is not None:
            raise KafkaException(self.fatal)
        messages = [m for m in batch if m.error() is None]
        if len(messages) != len(batch):  # error events, rare: look at each
            for m in batch:
                err = m.error()
                if err is None:
                    continue
                if err.fatal():
                    raise KafkaException(err)
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error", extra={"error": err.str()})
        return messages

    def pause_all(self) -> None:
        if not self.paused:
            self.paused = True
            if self.assignment:
                self._consumer.pause([TopicPartition(t, p) for t, p in self.assignment])
            metrics.paused.set(1)

    def resume_all(self) -> None:
        if self.paused:
            self.paused = False
            ready = [TopicPartition(t, p) for t, p in self.assignment if (t, p) not in self._held]
            if ready:
                self._consumer.resume(ready)
            metrics.paused.set(0)

    def hold(self, tp: TopicPartitionKey, offset: int, until: float) -> None:
        """Re-read `tp` from `offset` after `until` (monotonic): a transient decode failure."""
        self._held[tp] = until
        part = TopicPartition(tp[0], tp[1], offset)
        self._consumer.pause([part])
        self._consumer.seek(part)

    def is_held(self, tp: TopicPartitionKey) -> bool:
        return tp in self._held

    def release(self, tp: TopicPartitionKey) -> None:
        """End a hold now (the tracked-offsets cap): reading goes on from the hold's offset."""
        if self._held.pop(tp, None) is not None and not self.paused and tp in self.assignment:
            self._consumer.resume([TopicPartition(*tp)])

    def rewind(self, tp: TopicPartitionKey, offset: int) -> bool:
        """Read `tp` again from `offset` (deferred messages of an account that has room again);
        what was handled already is skipped by the caller. False if the client refused (the
        partition is not being fetched yet): the caller tries again later."""
        if tp not in self.assignment:
            return False
        try:
            self._consumer.seek(TopicPartition(tp[0], tp[1], offset))
        except KafkaException as exc:
            log.debug("rewind skipped", extra={"error": str(exc)})
            return False
        metrics.rewinds.inc()
        return True

    def has_holds(self) -> bool:
        """Some partition waits to be re-read (a replay is not complete while one does)."""
        return bool(self._held)

    def release_due(self, now: float) -> None:
        if not self._held:
            return
        due = [tp for tp, until in self._held.items() if until <= now]
        for tp in due:
            del self._held[tp]
        if due and not self.paused:
            self._consumer.resume([TopicPartition(t, p) for t, p in due])

    def store(self, offsets: dict[TopicPartitionKey, int]) -> None:
        """Store next-to-read offsets of partitions we still own, for librdkafka to commit."""
        owned = [TopicPartition(t, p, o) for (t, p), o in offsets.items() if (t, p) in self.assignment]
        if not owned:
            return
        try:
            self._consumer.store_offsets(offsets=owned)
        except KafkaException as exc:  # _STATE: a partition went away between check and call
            log.debug("offset store skipped", extra={"error": str(exc)})

    def committed(
        self, partitions: PartitionSet, timeout: float = 10.0
    ) -> dict[TopicPartitionKey, CommitPoint]:
        """The group's committed offsets and their metadata (offset maps) for `partitions`;
        partitions with no commit yet are left out. Errors leave a partition out too: its new
        owner then only loses the shortcut, never a record."""
        if not partitions:
            return {}
        try:
            found = self._consumer.committed([TopicPartition(t, p) for t, p in partitions], timeout=timeout)
        except KafkaException as exc:
            log.warning("could not read committed offsets", extra={"error": str(exc)})
            return {}
        return {
            (tp.topic, tp.partition): (tp.offset, tp.metadata or "")
            for tp in found
            if tp.error is None and tp.offset >= 0
        }

    def commit(self, points: dict[TopicPartitionKey, CommitPoint]) -> None:
        """Commit offsets with their offset maps now (asynchronously), for partitions we own.

        Also stored, so the commit librdkafka makes on revocation and close carries them. An
        explicit commit is needed besides: librdkafka's auto-commit skips a partition whose
        offset did not move, and a pinned watermark with a growing map is exactly the case
        worth committing.
        """
        owned = [
            TopicPartition(t, p, o, metadata=m)
            for (t, p), (o, m) in points.items()
            if (t, p) in self.assignment
        ]
        if not owned:
            return
        try:
            self._consumer.store_offsets(offsets=owned)
            self._consumer.commit(offsets=owned, asynchronous=True)
        except KafkaException as exc:  # _STATE: a partition went away between check and call
            log.debug("offset commit skipped", extra={"error": str(exc)})

    def close(self) -> None:
        """Leave the group; librdkafka commits the stored offsets first."""
        self._consumer.close()


def first_offsets_at(
    consumer: Consumer, timestamp_ms: int, ends: Mapping[TopicPartitionKey, int], *, timeout: float
) -> dict[TopicPartitionKey, int]:
    """Per partition of `ends`, the first offset whose timestamp is ≥ `timestamp_ms`, or the
    partition's end from `ends` when nothing is that recent."""
    found = consumer.offsets_for_times([TopicPartition(t, p, timestamp_ms) for t, p in ends], timeout=timeout)
    return {
        (tp.topic, tp.partition): tp.offset if tp.offset >= 0 else ends[(tp.topic, tp.partition)]
        for tp in found
    }

"""The ack stage: when is a Kafka offset safe to commit?

A message is *done* when every CleverTap record made from it was accepted, or when the message is
safely in the dead-letter topic (the broker acknowledged the write). Batches per account finish in
any order, so a partition's committable offset is the highest *contiguous* done offset + 1:
committing past an unfinished message would lose it on a crash.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from . import offset_map
from .contracts import CommitPoint, Failure, Headers, Origin, TopicPartitionKey

__all__ = ["CommitPoint", "Entry", "Headers", "OffsetTracker", "TopicPartitionKey"]


@dataclass(eq=False, slots=True)
class Entry:
    """One consumed Kafka message while it is in flight.

    Holds what a DLQ record needs (the original key, value, headers and timestamp) until the
    message is done, so nothing has to be re-read from Kafka to dead-letter it. `dropped` marks a
    message of a partition we lost: results that still arrive for it are ignored, because the
    partition's new owner reads it again.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None
    destination_id: str | None = None
    outstanding: int = 0
    failures: list[Failure] = field(default_factory=list)
    done: bool = False
    dropped: bool = False

    @property
    def origin(self) -> Origin:
        """The immutable token of the message this entry tracks."""
        return Origin(
            self.topic, self.partition, self.offset, self.key, self.value, self.headers, self.timestamp_ms
        )

    @property
    def size(self) -> int:
        return len(self.value or b"") + len(self.key or b"")


class _Partition:
    """Entries of one partition in consume order; the watermark below which all are done.

    `base` is the offset committed when the partition was assigned, and `skip` the ranges above
    it that the previous owner recorded as done (offset_map) and this owner has not read yet.
    """

    __slots__ = ("base", "committable", "entries", "skip")

    def __init__(self) -> None:
        self.entries: deque[Entry] = deque()
        self.committable: int | None = None
        self.base: int | None = None
        self.skip: deque[offset_map.Range] = deque()

    def commit_point(self, limit: int) -> CommitPoint | None:
        """The offset to commit and the map of what is done above it (None: nothing known)."""
        base = self.committable if self.committable is not None else self.base
        if base is None:
            return None
        done = offset_map.ranges(e.offset for e in self.entries if e.done)
        last = self.entries[-1].offset if self.entries else base - 1
        for first, end in self.skip:  # recorded by the previous owner, not read again yet
            start = max(first, last + 1, base)
            if start < end:
                if done and done[-1][1] == start:
                    done[-1] = (done[-1][0], end)
                else:
                    done.append((start, end))
        metadata = offset_map.encode(base, done, limit)
        if self.committable is None and not metadata:
            return None  # nothing finished: the committed (or reset) position already says it all
        return base, metadata

    def advance(self) -> bool:
        moved = False
        entries = self.entries
        while entries and entries[0].done:
            self.committable = entries.popleft().offset + 1
            moved = True
        return moved


class OffsetTracker:
    """Per-partition bookkeeping for everything the poll thread has read and not yet finished.

    Only the poll thread touches it: delivery results and DLQ acknowledgements reach it as values
    drained on that thread, so no lock is needed. Offsets need not be consecutive (compaction,
    transaction markers): only registered offsets are waited for.
    """

    def __init__(self) -> None:
        self._partitions: dict[TopicPartitionKey, _Partition] = {}
        self._moved: set[TopicPartitionKey] = set()
        self._dirty: set[TopicPartitionKey] = set()
        self.in_flight_records = 0
        self.in_flight_bytes = 0

    def restore(self, tp: TopicPartitionKey, committed: int, metadata: str | None) -> int:
        """A newly assigned partition: its committed offset and the offset map committed with it.
        Returns how many offsets the map says are already done."""
        part = self._partitions.get(tp)
        if part is None:
            part = self._partitions[tp] = _Partition()
        part.base = committed
        part.skip = deque(offset_map.decode(committed, metadata))
        return sum(end - start for start, end in part.skip)

    def already_done(self, tp: TopicPartitionKey, offset: int) -> bool:
        """True if the partition's previous owner finished `offset` (from the offset map): the
        caller registers and finishes it at once instead of processing it again."""
        part = self._partitions.get(tp)
        if part is None or not part.skip:
            return False
        skip = part.skip
        while skip and skip[0][1] <= offset:
            skip.popleft()
        return bool(skip) and skip[0][0] <= offset

    def register(self, entry: Entry) -> None:
        tp = (entry.topic, entry.partition)
        part = self._partitions.get(tp)
        if part is None:
            part = self._partitions[tp] = _Partition()
        if part.base is None:
            # No commit read at assignment (a new group, or the read failed): the first offset
            # read is where consumption started, so a map can be committed against it even
            # while that very first record is still in flight.
            part.base = entry.offset
        part.entries.append(entry)
        self.in_flight_records += 1
        self.in_flight_bytes += entry.size

    def finish(self, entry: Entry) -> None:
        """The message is delivered or dead-lettered: it may now count towards the commit."""
        if entry.done or entry.dropped:
            return
        entry.done = True
        self.in_flight_records -= 1
        self.in_flight_bytes -= entry.size
        tp = (entry.topic, entry.partition)
        part = self._partitions.get(tp)
        if part is not None:
            self._dirty.add(tp)
            if part.advance():
                self._moved.add(tp)

    def take_commits(
        self, limit: int = offset_map.MAX_METADATA_BYTES
    ) -> dict[TopicPartitionKey, CommitPoint]:
        """Commit points of the partitions where anything finished since the last call: the
        watermark plus the offset map (at most `limit` bytes) of what is done above it."""
        out: dict[TopicPartitionKey, CommitPoint] = {}
        for tp in self._dirty:
            part = self._partitions.get(tp)
            point = part.commit_point(limit) if part is not None else None
            if point is not None:
                out[tp] = point
        self._dirty.clear()
        self._moved.clear()
        return out

    def commit_points(
        self, partitions: set[TopicPartitionKey], limit: int = offset_map.MAX_METADATA_BYTES
    ) -> dict[TopicPartitionKey, CommitPoint]:
        """Current commit points of the given partitions (for revocation and shutdown)."""
        out: dict[TopicPartitionKey, CommitPoint] = {}
        for tp in partitions:
            part = self._partitions.get(tp)
            point = part.commit_point(limit) if part is not None else None
            if point is not None:
                out[tp] = point
        return out

    def take_committable(self) -> dict[TopicPartitionKey, int]:
        """Next offsets to read, for partitions whose watermark moved since the last call."""
        out: dict[TopicPartitionKey, int] = {}
        for tp in self._moved:
            part = self._partitions.get(tp)
            if part is not None and part.committable is not None:
                out[tp] = part.committable
        self._moved.clear()
        return out

    def committable(self, partitions: set[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """Current watermarks of the given partitions (for revocation and shutdown)."""
        out: dict[TopicPartitionKey, int] = {}
        for tp in partitions:
            part = self._partitions.get(tp)
            if part is not None and part.committable is not None:
                out[tp] = part.committable
        return out

    def pending(self, partitions: set[TopicPartitionKey] | None = None) -> int:
        """Unfinished messages, in all partitions or in the given ones."""
        return sum(
            len(p.entries) for tp, p in self._partitions.items() if partitions is None or tp in partitions
        )

    def drop(self, partitions: set[TopicPartitionKey]) -> int:
        """Forget partitions we no longer own; returns how many unfinished messages were let go."""
        released = 0
        for tp in partitions:
            part = self._partitions.pop(tp, None)
            self._moved.discard(tp)
            self._dirty.discard(tp)
            if part is None:
                continue
            for entry in part.entries:
                if not entry.done:
                    entry.dropped = True
                    released += 1
                    self.in_flight_records -= 1
                    self.in_flight_bytes -= entry.size
        return released

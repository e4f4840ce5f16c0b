"""The ack stage: when is a Kafka offset safe to commit?

A message is *done* when every CleverTap record made from it was accepted, or when the message is
safely in the dead-letter topic (the broker acknowledged the write). Batches per account finish in
any order, so a partition's committable offset is the highest *contiguous* done offset + 1:
committing past an unfinished message would lose it on a crash.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from . import offset_map
from .contracts import NO_HEADERS, CommitPoint, Failure, Headers, Origin, TopicPartitionKey

__all__ = ["SEEN", "Budget", "CommitPoint", "Entry", "Headers", "OffsetTracker", "TopicPartitionKey"]

#: `OffsetTracker.seen`: this owner read the offset before (done or in flight): skip it.
SEEN: Final = "seen"
#: `OffsetTracker.seen`: the partition's previous owner finished it (its offset map).
PREVIOUS_OWNER: Final = "previous_owner"
_TRIM_BYTES = 4096  # a partition's done-bits below its watermark are let go this many at a time


@dataclass(eq=False, slots=True)
class Budget:
    """One CleverTap account's share of the in-flight bound (issue 13).

    `records`/`bytes` count this account's messages in flight (charged when their records are
    batched, released when they finish). `full` is set when either reaches its maximum and
    cleared once both fell to half. A full account first pauses consumption briefly, like the
    overall bound (a busy but healthy account drains fast, and reading ahead of it would only
    waste work); if it stays full (`deferring`: hung, throttled, held), its new messages are
    *deferred* instead, a placeholder in the tracker with no payload, so the partitions it
    shares with other accounts keep flowing. `slow` remembers that the last full spell was long,
    so the next one defers at once. `waiting` holds, per partition, the offsets deferred for
    this account in order; while a partition has any, the account's later messages there are
    deferred too, so a message never overtakes an earlier one of the same account.
    """

    account: str
    max_records: int
    max_bytes: int
    records: int = 0
    bytes: int = 0
    full: bool = False
    deferring: bool = False
    slow: bool = False
    filled_at: float = 0.0
    waiting: dict[TopicPartitionKey, deque[int]] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        """Deferring, or messages of the account wait somewhere: routed messages take the slow path."""
        return self.deferring or bool(self.waiting)

    def deferred(self) -> int:
        return sum(len(q) for q in self.waiting.values())


class Entry:
    """One consumed Kafka message while it is in flight.

    Holds what a DLQ record needs (the original key, value, headers and timestamp) until the
    message is done, so nothing has to be re-read from Kafka to dead-letter it. `dropped` marks a
    message of a partition we lost: results that still arrive for it are ignored, because the
    partition's new owner reads it again. A plain slotted class: one is made per consumed
    message, and `size` (charged to the in-flight bounds) is computed once, here.
    """

    __slots__ = (
        "budget",
        "deferred",
        "destination_id",
        "done",
        "dropped",
        "failures",
        "headers",
        "key",
        "offset",
        "outstanding",
        "partition",
        "size",
        "timestamp_ms",
        "topic",
        "value",
    )

    def __init__(  # noqa: PLR0917 - positional, as the dataclass it replaced took them
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        timestamp_ms: int | None,
        destination_id: str | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp_ms = timestamp_ms
        self.destination_id = destination_id
        self.size = (len(value) if value else 0) + (len(key) if key else 0)
        self.outstanding = 0
        self.failures: tuple[Failure, ...] = ()  # `fail` adds; most messages never fail
        self.done = False
        self.dropped = False
        # The account whose in-flight budget this message is charged to (None: not charged);
        # for a deferred placeholder, the account it waits for.
        self.budget: Budget | None = None
        self.deferred = False

    def __repr__(self) -> str:
        return f"Entry({self.topic!r}, {self.partition}, {self.offset}, done={self.done})"

    def fail(self, failure: Failure) -> None:
        """One of the message's records (or the message itself) failed: the DLQ says why."""
        self.failures = (*self.failures, failure)

    @property
    def origin(self) -> Origin:
        """The immutable token of the message this entry tracks."""
        return Origin(
            self.topic, self.partition, self.offset, self.key, self.value, self.headers, self.timestamp_ms
        )


class _Partition:
    """Entries of one partition in consume order; the watermark below which all are done.

    `base` is the offset committed when the partition was assigned, and `skip` the ranges above
    it that the previous owner recorded as done (offset_map) and this owner has not read yet.
    `high` is one past the highest offset registered: a re-read below it (after a rewind) is
    either a deferred placeholder (`deferred`, by offset, in offset order) or already handled.

    `bits` has bit i set when offset `origin` + i is done, set as each message finishes, so a
    commit point is a slice and a shift of it (microseconds) rather than a walk over every
    entry above the watermark (milliseconds at a few thousand): the commit step runs right
    after each delivery result, and a kill -9 repeats whatever finished but was not committed.
    """

    __slots__ = ("base", "bits", "committable", "deferred", "entries", "high", "origin", "skip")

    def __init__(self) -> None:
        self.entries: deque[Entry] = deque()
        self.committable: int | None = None
        self.base: int | None = None
        self.skip: deque[offset_map.Range] = deque()
        self.high = -1
        self.deferred: dict[int, Entry] = {}
        self.bits = bytearray()
        self.origin: int | None = None  # None: not known yet; -1: an offset fell below it (walk)

    def mark(self, offset: int) -> None:
        """`offset` is done (its bit set)."""
        origin = self.origin
        if origin is None:
            origin = self.origin = self.base if self.base is not None and self.base <= offset else offset
        i = offset - origin
        if i < 0 or origin < 0:
            self.origin = -1  # cannot happen in consume order; the walk below stays correct
            return
        byte = i >> 3
        bits = self.bits
        if byte >= len(bits):
            bits.extend(bytes(byte + 1 - len(bits) + 64))
        bits[byte] |= 1 << (i & 7)

    def commit_point(self, limit: int) -> CommitPoint | None:
        """The offset to commit and the map of what is done above it (None: nothing known)."""
        base = self.committable if self.committable is not None else self.base
        if base is None:
            return None
        metadata = self._from_bits(base, limit) if not self.skip else None
        if metadata is None:
            metadata = offset_map.encode(base, self._walk(base), limit)
        if self.committable is None and not metadata:
            return None  # nothing finished: the committed (or reset) position already says it all
        return base, metadata

    def _from_bits(self, base: int, limit: int) -> str | None:
        """The map as a bitmap from `bits` (None: not usable here; the caller walks)."""
        origin = self.origin
        if origin is None:
            return ""  # nothing finished yet
        shift = base - origin
        if origin < 0 or shift < 0:
            return None
        window = int.from_bytes(self.bits[shift >> 3 :], "little") >> (shift & 7)
        return offset_map.encode_bits(window.to_bytes((window.bit_length() + 7) // 8, "little"), limit)

    def _walk(self, base: int) -> list[offset_map.Range]:
        """The done ranges above `base` from the entries, with the previous owner's not read yet."""
        done = offset_map.ranges(e.offset for e in self.entries if e.done)
        last = self.entries[-1].offset if self.entries else base - 1
        for first, end in self.skip:  # recorded by the previous owner, not read again yet
            start = max(first, last + 1, base)
            if start < end:
                if done and done[-1][1] == start:
                    done[-1] = (done[-1][0], end)
                else:
                    done.append((start, end))
        return done

    def advance(self) -> bool:
        """Move the watermark past the done entries at the front; True if it moved."""
        entries = self.entries
        last = None
        while entries and entries[0].done:
            last = entries.popleft()
        if last is None:
            return False
        self.committable = last.offset + 1
        if self.origin is not None and self.origin >= 0:
            passed = self.committable - self.origin  # whole bytes below the watermark go
            if passed >= 8 * _TRIM_BYTES:
                del self.bits[: passed >> 3]
                self.origin += (passed >> 3) << 3
        return True


def _raise(newest: dict[TopicPartitionKey, int], tp: TopicPartitionKey, ts: int) -> None:
    if ts > newest.get(tp, 0):
        newest[tp] = ts


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
        self._touched: dict[TopicPartitionKey, _Partition] = {}  # finish_many's scratch
        self.in_flight_records = 0
        self.in_flight_bytes = 0
        self.deferred_records = 0

    def restore(self, tp: TopicPartitionKey, committed: int, metadata: str | None) -> int:
        """A newly assigned partition: its committed offset and the offset map committed with it.
        Returns how many offsets the map says are already done."""
        part = self._partitions.get(tp)
        if part is None:
            part = self._partitions[tp] = _Partition()
        part.base = committed
        if part.origin is not None and part.origin > committed:
            part.origin = -1  # an earlier start than the bits know: commit points walk the entries
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

    def seen(self, tp: TopicPartitionKey, offset: int) -> Entry | str | None:
        """What to do with a consumed offset, in one lookup: None, a new offset (process it);
        SEEN, read before by this owner (a re-read after a rewind: skip it); PREVIOUS_OWNER,
        finished by the previous owner (register and finish it at once); or the deferred
        placeholder Entry registered for it (process it now if its account has room)."""
        part = self._partitions.get(tp)
        if part is None:
            return None
        if offset < part.high:
            return part.deferred.get(offset, SEEN)
        if part.skip:
            skip = part.skip
            while skip and skip[0][1] <= offset:
                skip.popleft()
            if skip and skip[0][0] <= offset:
                return PREVIOUS_OWNER
        return None

    def next_offset(self, tp: TopicPartitionKey) -> int | None:
        """One past the highest offset registered in `tp` (None: nothing registered)."""
        part = self._partitions.get(tp)
        return part.high if part is not None and part.high >= 0 else None

    def tracked(self, tp: TopicPartitionKey) -> int:
        """Offsets of `tp` held above its watermark (in flight, deferred, or done behind one)."""
        part = self._partitions.get(tp)
        return len(part.entries) if part is not None else 0

    def over(self, limit: int) -> list[TopicPartitionKey]:
        """Partitions holding at least `limit` offsets above their watermark."""
        return [tp for tp, p in self._partitions.items() if len(p.entries) >= limit]

    def defer(self, entry: Entry, budget: Budget) -> None:
        """A registered, unfinished entry becomes a placeholder waiting for `budget`'s account:
        its payload is let go (it is read again from Kafka), it no longer counts as in flight,
        and the watermark cannot pass it."""
        self.in_flight_records -= 1
        self.in_flight_bytes -= entry.size
        entry.value = entry.key = None
        entry.headers = NO_HEADERS
        entry.deferred = True
        entry.budget = budget
        part = self._partitions[(entry.topic, entry.partition)]
        part.deferred[entry.offset] = entry
        self.deferred_records += 1

    def undefer(
        self, entry: Entry, key: bytes | None, value: bytes | None, headers: Headers, timestamp_ms: int | None
    ) -> None:
        """A placeholder read again: it is an in-flight message once more, with its payload."""
        part = self._partitions[(entry.topic, entry.partition)]
        del part.deferred[entry.offset]
        self.deferred_records -= 1
        entry.key, entry.value, entry.headers, entry.timestamp_ms = key, value, headers, timestamp_ms
        entry.size = (len(value) if value else 0) + (len(key) if key else 0)
        entry.deferred = False
        entry.budget = None
        self.in_flight_records += 1
        self.in_flight_bytes += entry.size

    def partition(self, tp: TopicPartitionKey) -> _Partition:
        """The partition's bookkeeping, made on first sight (what `register` takes as `part`)."""
        part = self._partitions.get(tp)
        if part is None:
            part = self._partitions[tp] = _Partition()
        return part

    def register(self, entry: Entry, part: _Partition | None = None) -> None:
        """Track a consumed message; `part` is its partition's (`partition()`), if at hand."""
        if part is None:
            part = self.partition((entry.topic, entry.partition))
        if part.base is None:
            # No commit read at assignment (a new group, or the read failed): the first offset
            # read is where consumption started, so a map can be committed against it even
            # while that very first record is still in flight.
            part.base = entry.offset
        part.entries.append(entry)
        part.high = entry.offset + 1
        self.in_flight_records += 1
        self.in_flight_bytes += entry.size

    def finish(self, entry: Entry) -> None:
        """The message is delivered or dead-lettered: it may now count towards the commit."""
        self.finish_many((entry,))

    def finish_many(
        self, entries: Iterable[Entry], newest: dict[TopicPartitionKey, int] | None = None
    ) -> int:
        """`finish` for each of `entries` (a delivery result's messages), in one pass; returns
        how many finished now (not done or dropped before). `newest`, when given, is raised to
        the newest Kafka timestamp finished per partition.

        A result's entries come in runs of one partition (batches fill in consume order), so
        the partition is looked up once per run and its watermark advanced once per result.
        """
        partitions, touched = self._partitions, self._touched
        n = size_total = 0
        topic: str | None = None
        partition = -1
        part: _Partition | None = None
        ts_max = 0
        for entry in entries:
            if entry.done or entry.dropped:
                continue
            entry.done = True
            n += 1
            size = entry.size
            size_total += size
            budget = entry.budget
            if budget is not None:
                budget.records -= 1
                budget.bytes -= size
            # Nothing reads a finished message's payload again (its DLQ copy is written): a done
            # entry waiting behind a stuck watermark keeps only its offset's worth of memory.
            entry.value = entry.key = None
            entry.headers = NO_HEADERS
            if entry.partition != partition or entry.topic != topic:
                if newest is not None and ts_max and part is not None:
                    _raise(newest, (topic or "", partition), ts_max)
                topic, partition = entry.topic, entry.partition
                part = partitions.get((topic, partition))
                if part is not None:
                    touched[(topic, partition)] = part
                ts_max = 0
            if part is not None:
                part.mark(entry.offset)
                ts = entry.timestamp_ms
                if ts is not None and ts > ts_max:
                    ts_max = ts
        if newest is not None and ts_max and part is not None:
            _raise(newest, (topic or "", partition), ts_max)
        self.in_flight_records -= n
        self.in_flight_bytes -= size_total
        if touched:
            for tp, part in touched.items():
                self._dirty.add(tp)
                if part.advance():
                    self._moved.add(tp)
            touched.clear()
        return n

    @property
    def dirty(self) -> bool:
        """Something finished since the last `take_commits`."""
        return bool(self._dirty)

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

    def pending(self, partitions: set[TopicPartitionKey] | None = None, *, deferred: bool = True) -> int:
        """Messages above the watermark (0: everything read is done), in all partitions or in
        the given ones. `deferred=False`: only those being processed, leaving out deferred
        placeholders (nothing to wait for: they are not being processed)."""
        total = 0
        for tp, p in self._partitions.items():
            if partitions is None or tp in partitions:
                if deferred or not p.deferred:
                    total += len(p.entries)
                else:
                    total += sum(1 for e in p.entries if not e.done and not e.deferred)
        return total

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
                if entry.done:
                    continue
                entry.dropped = True
                released += 1
                if entry.deferred:
                    self.deferred_records -= 1
                    continue
                self._release(entry)
        return released

    def _release(self, entry: Entry) -> None:
        """`entry` no longer counts against the in-flight limits, nor its account's budget."""
        size = entry.size
        self.in_flight_records -= 1
        self.in_flight_bytes -= size
        budget = entry.budget
        if budget is not None:
            budget.records -= 1
            budget.bytes -= size

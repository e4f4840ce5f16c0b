"""The ack stage: when is a Kafka offset safe to commit?

A message is *done* when every CleverTap record made from it was accepted, or when the message is
safely in the dead-letter topic (the broker acknowledged the write). Batches per account finish in
any order, so a partition's committable offset is the highest *contiguous* done offset + 1:
committing past an unfinished message would lose it on a crash.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dlq import Failure

Headers = list[tuple[str, bytes]]


@dataclass(eq=False, slots=True)
class Entry:
    """One consumed Kafka message while it is in flight.

    Holds what a DLQ record needs (the original key, value, headers and timestamp) until the
    message is done, so nothing has to be re-read from Kafka to dead-letter it.
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

    @property
    def size(self) -> int:
        return len(self.value or b"") + len(self.key or b"")


class PartitionOffsets:
    """Offsets of one partition in consume order, and the watermark below which all are done."""

    __slots__ = ("_done", "_pending", "committable")

    def __init__(self) -> None:
        self._pending: deque[int] = deque()
        self._done: set[int] = set()
        self.committable: int | None = None

    def register(self, offset: int) -> None:
        self._pending.append(offset)

    def mark_done(self, offset: int) -> bool:
        """Record `offset` as done; return True when the committable offset moved."""
        self._done.add(offset)
        moved = False
        while self._pending and self._pending[0] in self._done:
            first = self._pending.popleft()
            self._done.discard(first)
            self.committable = first + 1
            moved = True
        return moved

    def __len__(self) -> int:
        return len(self._pending)


class OffsetTracker:
    """Per-partition bookkeeping for everything the poll thread has read and not yet finished.

    Only the poll thread touches it: delivery results and DLQ acknowledgements reach it as values
    drained on that thread, so no lock is needed.
    """

    def __init__(self) -> None:
        self._partitions: dict[tuple[str, int], PartitionOffsets] = {}
        self._moved: set[tuple[str, int]] = set()
        self.in_flight_records = 0
        self.in_flight_bytes = 0

    def register(self, entry: Entry) -> None:
        tp = (entry.topic, entry.partition)
        part = self._partitions.get(tp)
        if part is None:
            part = self._partitions[tp] = PartitionOffsets()
        part.register(entry.offset)
        self.in_flight_records += 1
        self.in_flight_bytes += entry.size

    def finish(self, entry: Entry) -> None:
        """The message is delivered or dead-lettered: it may now count towards the commit."""
        if entry.done:
            return
        entry.done = True
        self.in_flight_records -= 1
        self.in_flight_bytes -= entry.size
        tp = (entry.topic, entry.partition)
        part = self._partitions.get(tp)
        if part is not None and part.mark_done(entry.offset):
            self._moved.add(tp)

    def take_committable(self) -> dict[tuple[str, int], int]:
        """Offsets (next to read) for partitions whose watermark moved since the last call."""
        out: dict[tuple[str, int], int] = {}
        for tp in self._moved:
            part = self._partitions.get(tp)
            if part is not None and part.committable is not None:
                out[tp] = part.committable
        self._moved.clear()
        return out

    def pending(self, partitions: set[tuple[str, int]] | None = None) -> int:
        """Unfinished messages, in all partitions or in the given ones."""
        if partitions is None:
            return sum(len(p) for p in self._partitions.values())
        return sum(len(p) for tp, p in self._partitions.items() if tp in partitions)

    def drop(self, partitions: set[tuple[str, int]]) -> None:
        """Forget partitions we no longer own; late results for them must not be committed."""
        for tp in partitions:
            self._partitions.pop(tp, None)
            self._moved.discard(tp)

    def owns(self, entry: Entry) -> bool:
        return (entry.topic, entry.partition) in self._partitions

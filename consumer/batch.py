"""The batch stage: records grouped per CleverTap account and region, ready to upload.

CleverTap takes up to 1000 records per `/1/upload` call (100 for device tokens) and counts its
15-request concurrency cap per account, so batches are keyed by `Target` (account, URL and
credentials) and by kind. Each record is serialised once, when it is added, so the byte cap is
exact and the delivery thread only concatenates.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Literal

import orjson

from .clevertap_api import MAX_TOKEN_RECORDS
from .contracts import Failure, Target
from .offsets import Entry
from .transform import Record

BatchKind = Literal["upload", "token", "attribution"]


@dataclass(slots=True)
class Batch:
    """Serialised records for one target, in order, each beside the message it came from and
    that message's Kafka timestamp (0: none): parallel lists rather than an object per record,
    because the delivery thread sends `bodies` as they are and times `stamps` as they are (a
    compact array: reading each entry's timestamp there cost a cache miss per record), and the
    poll thread finishes `entries` as they are."""

    target: Target
    kind: BatchKind
    created: float
    bodies: list[bytes] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    stamps: array[int] = field(default_factory=lambda: array("q"))
    size_bytes: int = 0

    def body(self) -> bytes:
        return b'{"d":[' + b",".join(self.bodies) + b"]}"

    def subset(self, indices: list[int]) -> Batch:
        """The same batch holding only the records at `indices` (in that order)."""
        bodies, entries, stamps = self.bodies, self.entries, self.stamps
        return Batch(
            self.target,
            self.kind,
            self.created,
            [bodies[i] for i in indices],
            [entries[i] for i in indices],
            array("q", [stamps[i] for i in indices]),
            self.size_bytes,
        )

    def __len__(self) -> int:
        return len(self.bodies)


_ENVELOPE_BYTES = len(b'{"d":[]}')
_NONE_CLOSED: list[Batch] = []  # `add`'s usual answer, shared: callers only iterate it

#: The most levels of nesting the JSON writer takes (orjson); deeper records cannot be sent.
MAX_JSON_DEPTH = 254
#: Why a record could not be written as JSON (`transform`-stage DLQ reasons).
ENCODE_REASONS = ("too_deep", "not_json")


class UnencodableRecordError(Exception):
    """A record the JSON writer refuses: nested deeper than `MAX_JSON_DEPTH` levels (the
    transform and the decoder allow more) or holding an integer beyond 64 bits. A poison
    message: its `failure` goes to the DLQ, the service goes on."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def encode(record: Record) -> bytes:
    """One record as upload JSON, or `UnencodableRecordError` saying precisely why not."""
    try:
        return orjson.dumps(record.data)
    except orjson.JSONEncodeError as exc:
        if "Recursion limit" in str(exc):
            failure = Failure(
                "transform",
                "too_deep",
                f"the {record.kind} record nests deeper than the {MAX_JSON_DEPTH} levels a CleverTap"
                " upload body can be written with (JSON serialiser: Recursion limit reached)",
            )
        else:
            failure = Failure(
                "transform", "not_json", f"the {record.kind} record cannot be written as JSON: {exc}"
            )
        raise UnencodableRecordError(failure) from None


class Batcher:
    """Open batches per (target, kind), closed by count, bytes or age.

    Records keep their input order within a batch, and a batch's records always come from the
    order they were added, so per-user event order is preserved within one account.
    """

    def __init__(self, max_records: int, max_bytes: int, linger_s: float) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.linger_s = linger_s
        self._open: dict[tuple[Target, BatchKind], Batch] = {}

    def add(self, target: Target, record: Record, entry: Entry, now: float) -> list[Batch]:
        """Add one record; return the batches this closed (zero, one, or two when a lone
        oversized record both closes the open batch and fills its own). Raises
        `UnencodableRecordError`, before changing anything, for a record JSON cannot hold."""
        body = encode(record)
        kind: BatchKind = "upload"
        limit = self.max_records
        if record.kind == "token":
            kind, limit = "token", min(self.max_records, MAX_TOKEN_RECORDS)
        elif record.kind == "attribution":
            kind, limit = "attribution", 1  # the partner endpoint: one install per request (§7.2)
        key = (target, kind)
        batch = self._open.get(key)
        closed: list[Batch] = _NONE_CLOSED
        if batch is not None and batch.size_bytes + len(body) + 1 > self.max_bytes and batch.bodies:
            closed = [self._open.pop(key)]
            batch = None
        if batch is None:
            batch = self._open[key] = Batch(target, kind, now, size_bytes=_ENVELOPE_BYTES - 1)
        batch.bodies.append(body)
        batch.entries.append(entry)
        batch.stamps.append(entry.timestamp_ms or 0)
        batch.size_bytes += len(body) + 1  # the comma before it (the first one's: the -1 above)
        if len(batch.bodies) >= limit or batch.size_bytes >= self.max_bytes:
            closed = [*closed, self._open.pop(key)]
        return closed

    def due(self, now: float) -> list[Batch]:
        """Batches that waited `linger_s` for more records."""
        ready = [k for k, b in self._open.items() if now - b.created >= self.linger_s]
        return [self._open.pop(k) for k in ready]

    def flush(self) -> list[Batch]:
        out = list(self._open.values())
        self._open.clear()
        return out

    def discard(self, partitions: set[tuple[str, int]]) -> int:
        """Drop records of revoked partitions from open batches; their new owner re-reads them."""
        dropped = 0
        for key in list(self._open):
            batch = self._open[key]
            keep = [i for i, e in enumerate(batch.entries) if (e.topic, e.partition) not in partitions]
            dropped += len(batch) - len(keep)
            if not keep:
                del self._open[key]
            elif len(keep) != len(batch):
                kept = self._open[key] = batch.subset(keep)
                kept.size_bytes = _ENVELOPE_BYTES + sum(len(b) for b in kept.bodies) + len(keep) - 1
        return dropped

    def __len__(self) -> int:
        return sum(len(b) for b in self._open.values())

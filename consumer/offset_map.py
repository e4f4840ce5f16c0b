"""The offsets stage's memory across owners: which offsets above the committed one are done.

The committed offset is a contiguous watermark, so one slow batch pins it while everything read
after it is delivered but not committed; a crash (or a rebalance) would make the partition's next
owner deliver all of that again, and CleverTap has no idempotency key, so each repeat is a
doubled event. Like Confluent's Parallel Consumer, we write the done offsets above the watermark
into the commit's metadata string; whoever gets the partition next reads it and skips them.

Format: ``ctc1:`` + URL-safe base64 (no padding) of unsigned LEB128 varints, the run lengths of
alternating *not done* / *done* offsets starting at the committed offset. Runs compress both
the usual shape (a few stuck batches among long done stretches) and sparse patterns well
enough that a few thousand offsets fit the broker's `offset.metadata.max.bytes` (default 4096).
When the whole map does not fit, the longest prefix that fits is written: offsets past it are
merely delivered again, never skipped wrongly. Metadata this module did not write (another
tool's, a corrupt string) reads as "nothing known done": the plain watermark.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence

PREFIX = "ctc1:"
# Kafka's default `offset.metadata.max.bytes`; the broker refuses a commit above it.
MAX_METADATA_BYTES = 4096

Range = tuple[int, int]  # [start, end): offsets start … end-1


def ranges(offsets: Iterable[int]) -> list[Range]:
    """Ascending offsets as maximal [start, end) ranges of consecutive offsets."""
    out: list[Range] = []
    for offset in offsets:
        if out and out[-1][1] == offset:
            out[-1] = (out[-1][0], offset + 1)
        else:
            out.append((offset, offset + 1))
    return out


def _varint(n: int, out: bytearray) -> None:
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _encoded_len(raw_len: int) -> int:
    return len(PREFIX) + (4 * raw_len + 2) // 3  # base64 without padding


def encode(base: int, done: Sequence[Range], limit: int = MAX_METADATA_BYTES) -> str:
    """The metadata for a commit of `base`: `done` (ascending, disjoint ranges at or above
    `base`) as runs, cut to the longest prefix of whole done-runs that fits `limit` bytes.
    Returns "" when nothing is done above `base` or not even one run fits."""
    raw = bytearray()
    fitted = 0
    position = base
    for first, end in done:
        if end <= position:
            continue
        start = max(first, position)
        candidate = bytearray(raw)
        _varint(start - position, candidate)
        _varint(end - start, candidate)
        if _encoded_len(len(candidate)) > limit:
            break
        raw = candidate
        fitted = len(raw)
        position = end
    if not fitted:
        return ""
    return PREFIX + base64.urlsafe_b64encode(bytes(raw)).decode("ascii").rstrip("=")


def decode(base: int, metadata: str | None) -> list[Range]:
    """The done ranges recorded with a commit of `base`; [] for empty or foreign metadata."""
    if not metadata or not metadata.startswith(PREFIX):
        return []
    text = metadata[len(PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return []
    runs: list[int] = []
    value = shift = 0
    for byte in raw:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 63:
                return []
            continue
        runs.append(value)
        value = shift = 0
    if shift or len(runs) % 2:
        return []  # cut mid-varint or mid-pair: not ours
    out: list[Range] = []
    position = base
    for gap, length in zip(runs[::2], runs[1::2], strict=True):
        if length == 0:
            return []
        start = position + gap
        out.append((start, start + length))
        position = start + length
    return out

"""The offsets stage's memory across owners: which offsets above the committed one are done.

The committed offset is a contiguous watermark, so one slow batch pins it while everything read
after it is delivered but not committed; a crash (or a rebalance) would make the partition's next
owner deliver all of that again, and CleverTap has no idempotency key, so each repeat is a
doubled event. Like Confluent's Parallel Consumer, we write the done offsets above the watermark
into the commit's metadata string; whoever gets the partition next reads it and skips them.

Format: ``ctc1:<kind>:`` + URL-safe base64 (no padding). Kind ``r``: unsigned LEB128 varints,
the run lengths of alternating *not done* / *done* offsets from the committed offset (small
when a few stuck batches sit among long done stretches); ``b``: a bitmap, bit i set when
offset base+i is done (bounded: 4096 bytes of metadata cover ~24,000 offsets whatever the
pattern, e.g. every eighth offset stuck behind one sick account); ``rz``/``bz``: the same,
zlib-compressed. The smallest that fits the broker's `offset.metadata.max.bytes` (default
4096) is written. When none holds the whole map, the longer prefix is written: offsets past it
are merely delivered again, never skipped wrongly. Metadata this module did not write (another
tool's, a corrupt string) reads as "nothing known done": the plain watermark.
"""

from __future__ import annotations

import base64
import binascii
import zlib
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


def _encoded_len(kind: str, raw_len: int) -> int:
    return len(PREFIX) + len(kind) + 1 + (4 * raw_len + 2) // 3  # base64 without padding


def _text(kind: str, raw: bytes) -> str:
    return f"{PREFIX}{kind}:" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _runs(base: int, done: Sequence[Range], limit: int) -> tuple[bytes, int]:
    """Run-length bytes of the longest prefix of `done` that fits, and the offset it covers to.
    (Built in place: the commit step encodes every dirty partition ten times a second.)"""
    raw = bytearray()
    pair = bytearray()
    position = base
    for first, end in done:
        if end <= position:
            continue
        start = max(first, position)
        pair.clear()
        _varint(start - position, pair)
        _varint(end - start, pair)
        if _encoded_len("r", len(raw) + len(pair)) > limit:
            break
        raw += pair
        position = end
    return bytes(raw), position


def _bitmap(base: int, done: Sequence[Range], limit: int) -> tuple[bytes, int]:
    """Bit i (LSB first) set = offset base+i done, cut to what fits; and the offset covered to.
    (One integer mask per range, not a Python step per offset: this runs ten times a second.)"""
    if not done:
        return b"", base
    span = done[-1][1] - base
    max_bytes = max(0, (limit - _encoded_len("b", 0)) * 3 // 4)
    span = min(span, max_bytes * 8)
    mask = 0
    for first, end in done:
        start, stop = max(first, base), min(end, base + span)
        if start < stop:
            mask |= ((1 << (stop - start)) - 1) << (start - base)
    bits = mask.to_bytes((span + 7) // 8, "little").rstrip(b"\0")
    return bits, base + len(bits) * 8


def encode(base: int, done: Sequence[Range], limit: int = MAX_METADATA_BYTES) -> str:
    """The metadata for a commit of `base`: `done` (ascending, disjoint ranges at or above
    `base`) as runs or as a bitmap, zlib-compressed when that is shorter, whichever form is the
    smallest; when none fits `limit` bytes, the uncompressed form that covers the longer prefix
    of `done`. Returns "" when nothing is done above `base` or nothing fits."""
    if limit <= 0:
        return ""
    runs, runs_to = _runs(base, done, limit)
    bitmap, bitmap_to = _bitmap(base, done, limit)
    complete = done[-1][1] if done else base
    candidates: list[str] = []
    if runs_to >= complete and runs:
        candidates += [_text("r", runs), _text("rz", zlib.compress(runs, 9))]
    if bitmap_to >= complete and bitmap:
        candidates += [_text("b", bitmap), _text("bz", zlib.compress(bitmap, 9))]
    if not candidates:
        # Nothing holds the whole map: the longer prefix; offsets past it are sent again.
        if runs_to >= bitmap_to and runs:
            candidates.append(_text("r", runs))
        elif bitmap:
            candidates.append(_text("b", bitmap))
    fitting = [c for c in candidates if len(c) <= limit]
    return min(fitting, key=len) if fitting else ""


def encode_bits(bits: bytes, limit: int = MAX_METADATA_BYTES) -> str | None:
    """The metadata for a bitmap already built (bit i, LSB first, = offset base+i done; no
    trailing zero bytes): kind ``b`` or ``bz``, the smaller that fits `limit`. "" when nothing
    is done; None when neither fits (the caller encodes the ranges, which cuts a prefix)."""
    if not bits:
        return ""
    if limit <= 0:
        return None
    plain = _text("b", bits) if _encoded_len("b", len(bits)) <= limit else None
    packed = _text("bz", zlib.compress(bits, 9))
    fitting = [t for t in (plain, packed) if t is not None and len(t) <= limit]
    return min(fitting, key=len) if fitting else None


def decode(base: int, metadata: str | None) -> list[Range]:
    """The done ranges recorded with a commit of `base`; [] for empty or foreign metadata."""
    if not metadata or not metadata.startswith(PREFIX):
        return []
    kind, _, text = metadata[len(PREFIX) :].partition(":")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        if kind.endswith("z"):
            raw = zlib.decompress(raw)
    except (binascii.Error, ValueError, zlib.error):
        return []
    if kind in ("b", "bz"):
        return ranges(base + i for i in range(len(raw) * 8) if raw[i >> 3] >> (i & 7) & 1)
    if kind not in ("r", "rz"):
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

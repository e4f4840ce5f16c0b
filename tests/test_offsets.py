"""The committable offset is the highest contiguous done offset + 1, whatever order batches finish in."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from consumer.offsets import Entry, OffsetTracker


def _entry(offset: int, partition: int = 0, topic: str = "t", value: bytes = b"xx") -> Entry:
    return Entry(topic, partition, offset, None, value, [], None)


def test_out_of_order_completion_waits_for_the_gap() -> None:
    tracker = OffsetTracker()
    entries = [_entry(o) for o in range(5)]
    for e in entries:
        tracker.register(e)
    tracker.finish(entries[1])
    tracker.finish(entries[2])
    assert tracker.take_committable() == {}
    tracker.finish(entries[0])
    assert tracker.take_committable() == {("t", 0): 3}
    assert tracker.take_committable() == {}, "reported once per move"
    tracker.finish(entries[4])
    assert tracker.take_committable() == {}
    tracker.finish(entries[3])
    assert tracker.take_committable() == {("t", 0): 5}


def test_gaps_in_offsets_do_not_block_the_watermark() -> None:
    tracker = OffsetTracker()
    entries = [_entry(o) for o in (10, 12, 17)]  # compaction and transaction markers leave holes
    for e in entries:
        tracker.register(e)
    for e in entries:
        tracker.finish(e)
    assert tracker.take_committable() == {("t", 0): 18}


def test_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    a, b = _entry(0, partition=0), _entry(0, partition=1)
    tracker.register(a)
    tracker.register(b)
    tracker.finish(b)
    assert tracker.take_committable() == {("t", 1): 1}
    assert tracker.pending({("t", 0)}) == 1
    assert tracker.pending({("t", 1)}) == 0


def test_in_flight_counts_follow_register_finish_and_drop() -> None:
    tracker = OffsetTracker()
    a, b, c = _entry(0, value=b"abc"), _entry(1, value=b"de"), _entry(0, partition=1, value=b"f")
    for e in (a, b, c):
        tracker.register(e)
    assert (tracker.in_flight_records, tracker.in_flight_bytes) == (3, 6)
    tracker.finish(a)
    tracker.finish(a)  # finishing twice must not count twice
    assert (tracker.in_flight_records, tracker.in_flight_bytes) == (2, 3)
    assert tracker.drop({("t", 0)}) == 1
    assert b.dropped
    assert (tracker.in_flight_records, tracker.in_flight_bytes) == (1, 1)
    tracker.finish(b)  # a late result for a partition we lost changes nothing
    assert (tracker.in_flight_records, tracker.in_flight_bytes) == (1, 1)
    assert tracker.take_committable() == {}


def test_committable_of_revoked_partitions_is_available_before_drop() -> None:
    tracker = OffsetTracker()
    entries = [_entry(o) for o in range(3)]
    for e in entries:
        tracker.register(e)
    tracker.finish(entries[0])
    assert tracker.committable({("t", 0)}) == {("t", 0): 1}
    tracker.drop({("t", 0)})
    assert tracker.committable({("t", 0)}) == {}


@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=60), st.randoms())
def test_watermark_never_passes_an_unfinished_offset(gaps: list[int], rnd: random.Random) -> None:
    tracker = OffsetTracker()
    offsets, o = [], 0
    for gap in gaps:
        o += gap + 1
        offsets.append(o)
    entries = [_entry(off) for off in offsets]
    for e in entries:
        tracker.register(e)
    order = list(entries)
    rnd.shuffle(order)
    finished: set[int] = set()
    committed = -1
    for e in order:
        tracker.finish(e)
        finished.add(e.offset)
        moved = tracker.take_committable().get(("t", 0))
        if moved is not None:
            assert moved > committed
            committed = moved
        # everything below the committed offset is finished
        assert all(off in finished for off in offsets if off < committed)
    assert committed == offsets[-1] + 1
    assert tracker.in_flight_records == 0

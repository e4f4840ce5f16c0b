"""The offset map: done offsets above the committed one survive a change of owner, within the
broker's metadata limit, and never make a new owner skip an offset that was not done."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from confluent_kafka import Consumer
from hypothesis import given
from hypothesis import strategies as st

from consumer import offset_map
from consumer.offsets import Entry, OffsetTracker
from consumer.source import RebalanceListener, Source
from tests.support.kafka import KafkaBed


def _expand(rs: list[offset_map.Range]) -> set[int]:
    return {o for start, end in rs for o in range(start, end)}


@given(st.integers(0, 2**40), st.sets(st.integers(1, 5000), max_size=400))
def test_round_trip(base: int, rel: set[int]) -> None:
    done = offset_map.ranges(sorted(base + r for r in rel))
    text = offset_map.encode(base, done)
    assert len(text) <= offset_map.MAX_METADATA_BYTES
    assert _expand(offset_map.decode(base, text)) == {base + r for r in rel}


@given(st.sets(st.integers(1, 200_000), min_size=1, max_size=3000), st.integers(8, 600))
def test_a_map_too_big_keeps_a_prefix_and_never_claims_more(rel: set[int], limit: int) -> None:
    done = offset_map.ranges(sorted(rel))
    text = offset_map.encode(0, done, limit)
    assert len(text) <= limit
    got = _expand(offset_map.decode(0, text))
    assert got <= rel, "only offsets that were done"
    if got:  # a prefix: everything done below the last recovered offset is recovered
        assert got == {o for o in rel if o <= max(got)}


def test_the_usual_shape_fits_thousands_of_offsets() -> None:
    # A 20k-record in-flight window of batches of 50 where every third batch is stuck
    done = offset_map.ranges(o for o in range(20_000) if (o // 50) % 3)
    text = offset_map.encode(0, done)
    assert len(text) < 1000
    assert _expand(offset_map.decode(0, text)) == _expand(done)


def test_nothing_done_above_the_base_is_the_plain_watermark() -> None:
    assert offset_map.encode(10, []) == ""
    assert offset_map.encode(10, [(3, 10)]) == ""
    assert offset_map.decode(10, "") == []


def test_foreign_or_corrupt_metadata_reads_as_nothing_done() -> None:
    for text in (
        "hello",
        "ctc1:r:!!!",
        "ctc1:r:gA",
        "ctc1:r:AQ",
        None,
        "ctc1:r:AAA",
        "ctc1:bz:AAAA",
        "ctc1:q:AA",
    ):
        assert offset_map.decode(5, text) == [], text


def _entry(offset: int) -> Entry:
    return Entry("t", 0, offset, None, b"v", [], None)


def test_tracker_records_done_above_a_pinned_watermark_and_a_new_owner_skips_them() -> None:
    old = OffsetTracker()
    old.restore(("t", 0), 0, None)
    entries = [_entry(o) for o in range(10)]
    for e in entries:
        old.register(e)
    for e in entries[3:]:
        old.finish(e)  # offsets 0..2 stuck, 3..9 delivered
    points = old.take_commits()
    assert points[("t", 0)][0] == 0
    offset, metadata = points[("t", 0)]

    new = OffsetTracker()
    assert new.restore(("t", 0), offset, metadata) == 7
    assert [o for o in range(12) if new.already_done(("t", 0), o)] == list(range(3, 10))


def test_restored_ranges_not_read_again_stay_in_the_next_commit() -> None:
    tracker = OffsetTracker()
    tracker.restore(("t", 0), 0, offset_map.encode(0, [(5, 10)]))
    first = _entry(0)
    tracker.register(first)
    tracker.finish(first)  # the watermark moves to 1; 5..9 not re-read yet
    offset, metadata = tracker.take_commits()[("t", 0)]
    assert offset == 1
    assert _expand(offset_map.decode(offset, metadata)) == set(range(5, 10))


class _Quiet(RebalanceListener):
    pass


def test_offset_maps_round_trip_through_a_real_broker(kafka: KafkaBed, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=1)
    kafka.produce(topic, [b"x"] * 20)
    conf = {
        "bootstrap.servers": kafka.bootstrap,
        "group.id": f"g-map-{topic}",
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
    }
    source = Source(conf, [topic], _Quiet())
    source.subscribe()
    deadline = time.monotonic() + 30
    while not source.assignment and time.monotonic() < deadline:
        source.poll(100, 0.2)
    tp = (topic, 0)
    first = offset_map.encode(4, [(6, 9)])
    source.commit({tp: (4, first)})
    # The watermark stays at 4 while more completes: only an explicit commit sends the new map.
    second = offset_map.encode(4, [(6, 9), (12, 20)])
    source.commit({tp: (4, second)})
    deadline = time.monotonic() + 10
    while source.committed({tp}).get(tp) != (4, second) and time.monotonic() < deadline:
        source.poll(100, 0.1)
    assert source.committed({tp}) == {tp: (4, second)}

    # Too big for the broker: the commit fails, the source falls back to plain watermarks.
    source.commit({tp: (5, "ctc1:b:" + "A" * 5000)})
    deadline = time.monotonic() + 10
    while source.metadata_limit and time.monotonic() < deadline:
        source.poll(100, 0.1)
    assert source.metadata_limit == 0
    source.close()

    reader = Consumer({**conf, "enable.auto.commit": False})
    from confluent_kafka import TopicPartition

    (got,) = reader.committed([TopicPartition(topic, 0)], timeout=10)
    reader.close()
    assert (got.offset, got.metadata) == (4, second)
    assert offset_map.decode(got.offset, got.metadata) == [(6, 9), (12, 20)]


def test_a_fragmented_window_of_twenty_thousand_fits_as_a_bitmap() -> None:
    # one of eight accounts stuck: every eighth offset of a 20k window not done
    done = offset_map.ranges(o for o in range(1, 20_000) if o % 8)
    text = offset_map.encode(0, done)
    assert len(text) <= offset_map.MAX_METADATA_BYTES
    assert _expand(offset_map.decode(0, text)) == _expand(done)


@given(
    st.integers(0, 2**40),
    st.lists(st.integers(0, 3), min_size=1, max_size=600),  # gap before each offset
    st.randoms(use_true_random=False),
    st.integers(50, 4096),
)
def test_commit_points_say_exactly_what_is_done_above_the_watermark(
    start: int, gaps: list[int], rnd: random.Random, limit: int
) -> None:
    """The tracker sets a bit per finished offset and commits a slice of them; whatever the
    order things finish in, each commit point decodes to the done offsets above the watermark
    (a prefix of them when the limit is tight), never to one that is not done."""
    tracker = OffsetTracker()
    offsets, o = [], start
    for gap in gaps:
        o += gap
        offsets.append(o)
        o += 1
    entries = [Entry("t", 0, x, None, b"v", [], None) for x in offsets]
    for e in entries:
        tracker.register(e)
    for e in rnd.sample(entries, len(entries)):
        tracker.finish(e)
        point = tracker.take_commits(limit).get(("t", 0))
        assert point is not None
        watermark, metadata = point
        assert len(metadata) <= limit
        done_above = {x.offset for x in entries if x.done and x.offset >= watermark}
        claimed = _expand(offset_map.decode(watermark, metadata))
        assert claimed <= done_above
        if limit >= offset_map.MAX_METADATA_BYTES:
            assert claimed == done_above
        assert all(x.done for x in entries if x.offset < watermark)


def test_commit_points_stay_right_after_the_watermark_moved_far() -> None:
    """Bits below the watermark are let go in whole blocks as it moves: a long run keeps the
    map right (and the bitmap small) far beyond the first block."""
    tracker = OffsetTracker()
    entries = [Entry("t", 0, x, None, b"v", [], None) for x in range(100_000)]
    for e in entries:
        tracker.register(e)
    stuck = {35_000, 99_000}
    for e in entries:
        if e.offset not in stuck:
            tracker.finish(e)
    watermark, metadata = tracker.take_commits()[("t", 0)]
    assert watermark == 35_000
    assert offset_map.decode(watermark, metadata) == [(35_001, 99_000), (99_001, 100_000)]
    tracker.finish(entries[35_000])
    watermark, metadata = tracker.take_commits()[("t", 0)]
    assert (watermark, offset_map.decode(watermark, metadata)) == (99_000, [(99_001, 100_000)])

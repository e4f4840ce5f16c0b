"""A rebalance storm: one group going 1 → 3 → 1 → 3 → 1 members while events keep arriving,
the members that leave stopped with SIGTERM or kill -9, mixed.

Hard facts at the end: nothing lost (every event id delivered or in the DLQ), every offset
committed, the last member drains on SIGTERM with exit 0, each SIGTERMed member exited 0.
Duplicates are counted and printed: a SIGTERM drains and commits before leaving (none), a
kill -9 redelivers what was in flight or finished since the last commit (README, "Delivery
guarantees"), so only a loose bound is asserted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import members
from tests.support.campaign import books, campaign_bed, delivered_ids, events
from tests.support.fake_clevertap import FakeCleverTapProcess
from tests.support.kafka import KafkaBed
from tests.support.service import Bed, ServiceProcess, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(400)]

DESTINATIONS = 4
PARTITIONS = 6
CHUNK = 3000  # produced at each step of the storm: 4 chunks
# Slow, narrow delivery keeps a backlog in Kafka, so every rebalance moves partitions with work.
SLOW = {
    "LOG_LEVEL": "WARNING",
    "MAX_IN_FLIGHT_RECORDS": "200",
    "BATCH_MAX_RECORDS": "10",
    "CLEVERTAP_MAX_IN_FLIGHT": "1",
}


@pytest.fixture
def storm_bed(
    kafka: KafkaBed,
    start_fake: Callable[..., FakeCleverTapProcess],
    new_topic: Callable[..., str],
    tmp_path: Path,
) -> Iterator[Bed]:
    yield from campaign_bed(
        kafka, start_fake, new_topic, tmp_path, n_destinations=DESTINATIONS, partitions=PARTITIONS
    )


def _assigned(s: ServiceProcess) -> float:
    return s.metric_sum("clevertap_consumer_assigned_partitions")


def _owns_partitions(group: list[ServiceProcess]) -> Callable[[], bool]:
    return lambda: all(_assigned(s) > 0 for s in group) and sum(map(_assigned, group)) == PARTITIONS


def test_a_rebalance_storm_with_sigterm_and_kill9_loses_nothing(storm_bed: Bed) -> None:
    bed = storm_bed
    bed.fake.set_faults(latency_ms=100)  # ≤ 100 records/s per account and member
    produced = 0

    def produce_chunk() -> None:
        nonlocal produced
        bed.produce(events(CHUNK, DESTINATIONS, start=produced))
        produced += CHUNK

    def progress(at_least: int) -> None:
        wait_for(
            lambda: len(delivered_ids(bed.fake)) >= at_least,
            90,
            lambda: "\n".join(s.log_tail(1500) for s in bed.services),
        )

    def join(n: int) -> list[ServiceProcess]:
        joined = [bed.service(**SLOW) for _ in range(n)]
        return [members.ready(bed, s, **SLOW) for s in joined]

    def describe(group: list[ServiceProcess]) -> Callable[[], str]:
        return lambda: f"assigned {[_assigned(s) for s in group]}"

    sigterm_exits: list[int] = []
    kills = 0
    backlog_at_stops: list[int] = []  # records produced but not committed when members left
    delivered_by_leavers: list[int] = []

    def busy_then_stop(kill9: ServiceProcess, sigterm: ServiceProcess) -> None:
        """Fresh events arrive, members are working on them, and then two of them leave."""
        nonlocal kills
        before = len(delivered_ids(bed.fake))
        produce_chunk()
        progress(before + 100)
        for s in (kill9, sigterm):
            delivered_by_leavers.append(int(s.metric_sum("clevertap_consumer_records_delivered_total")))
        backlog_at_stops.append(bed.end_total() - bed.committed_total())
        kill9.kill()
        kills += 1
        sigterm_exits.append(sigterm.terminate())

    produce_chunk()
    [a] = join(1)
    progress(100)
    # 1 → 3
    b, c = join(2)
    wait_for(_owns_partitions([a, b, c]), 90, describe([a, b, c]))
    # 3 → 1: kill -9 one member, SIGTERM another, while they work
    busy_then_stop(a, b)
    wait_for(_owns_partitions([c]), 90, describe([c]))
    # 1 → 3 again
    d, e = join(2)
    wait_for(_owns_partitions([c, d, e]), 90, describe([c, d, e]))
    # 3 → 1 again, the other way round; more events arrive during the rebalance
    busy_then_stop(d, c)
    produce_chunk()
    wait_for(_owns_partitions([e]), 90, describe([e]))

    bed.fake.set_faults()
    bed.wait_committed_to_end(timeout=180)
    result = books(bed, produced)
    assert e.running, e.log_tail()
    last_exit = e.terminate()
    print(
        result.summary(
            "rebalance_storm",
            members="1-3-1-3-1",
            sigterms=len(sigterm_exits),
            kill9s=kills,
            partitions=PARTITIONS,
            backlog_at_stops=backlog_at_stops,
        )
    )
    assert result.lost == [], result.lost[:20]
    assert all(n > 0 for n in delivered_by_leavers), (
        f"every member that left was working: {delivered_by_leavers}"
    )
    assert all(n > 0 for n in backlog_at_stops), "members left while events were still flowing"
    assert sigterm_exits == [0, 0], "a SIGTERMed member drains and exits 0, rebalance or not"
    assert last_exit == 0, e.log_tail()
    # A kill -9 can only redeliver what that member had in flight or not yet committed: far less
    # than everything (each member holds at most MAX_IN_FLIGHT_RECORDS).
    assert result.duplicates < produced // 2, result.summary("rebalance_storm")

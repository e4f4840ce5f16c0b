"""The Kafka broker restarts in the middle of a run.

The test gets a broker of its own (dev/kafka_local.py, like the session's), so stopping it
cannot disturb any other test's topics or groups. The service keeps running while the broker
is away (no exit, no crash loop), and once it is back everything is finished: every event id
delivered or in the DLQ, every offset committed. Duplicates are counted and printed.

The broker is away longer than the group session (the bed's KAFKA_SESSION_TIMEOUT_MS, 6 s;
a restart takes 8 s plus the JVM's start), so librdkafka gives the partitions up as *lost* and
the service re-reads from the last commit that reached the broker: what it delivered since is
sent again (README, "Delivery guarantees"): 0 to 3,000 of the 8,000 events in our runs,
depending on what finished between the last good commit and the loss. With the default 45 s
session the same restart loses no partition and duplicated nothing (measured once: 0 of 8,000).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dev.kafka_local import Broker
from tests.support import members
from tests.support.campaign import accounts, books, delivered_ids, events, write_destinations
from tests.support.fake_clevertap import FakeCleverTapProcess
from tests.support.kafka import KafkaBed
from tests.support.service import Bed, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(400)]

DESTINATIONS = 4
EVENTS = 8000
DOWN_S = 8.0


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[KafkaBed]:
    broker = Broker(tmp_path / "kafka", heap="512m")
    broker.start()
    try:
        yield KafkaBed(broker.bootstrap, broker)
    finally:
        broker.stop()


@pytest.fixture
def restart_bed(
    own_kafka: KafkaBed, start_fake: Callable[..., FakeCleverTapProcess], tmp_path: Path
) -> Iterator[Bed]:
    fake = start_fake(accounts=accounts(DESTINATIONS))
    topic = own_kafka.create_topic("restart-events", 4)
    dlq = own_kafka.create_topic("restart-events-dlq", 1)
    b = Bed(own_kafka, fake, tmp_path, topic, dlq)
    write_destinations(b, DESTINATIONS)
    try:
        yield b
    finally:
        b.close()


def test_a_broker_restart_mid_run_loses_nothing_and_the_service_rides_it_out(restart_bed: Bed) -> None:
    bed = restart_bed
    broker = bed.kafka.broker
    assert broker is not None
    bed.fake.set_faults(latency_ms=40)  # slow enough that the restart lands mid-run
    bed.produce(events(EVENTS, DESTINATIONS))
    service = members.start(
        bed,
        LOG_LEVEL="WARNING",
        MAX_IN_FLIGHT_RECORDS="1000",
        BATCH_MAX_RECORDS="100",
        CLEVERTAP_MAX_IN_FLIGHT="2",
    )
    wait_for(lambda: len(delivered_ids(bed.fake)) >= EVENTS // 5, 120, service.log_tail)
    broker.stop()
    at_stop = len(delivered_ids(bed.fake))
    time.sleep(DOWN_S)
    assert service.running, f"the service waits for the broker:\n{service.log_tail()}"
    broker.start()
    bed.fake.set_faults()
    bed.wait_committed_to_end(timeout=180)
    result = books(bed, EVENTS)
    assert service.running, f"the service rode out the restart:\n{service.log_tail()}"
    rebalances = {
        event: int(service.metric_sum("clevertap_consumer_rebalances_total", event=event))
        for event in ("assigned", "revoked", "lost")
    }
    failed_commits = int(service.metric_sum("clevertap_consumer_offset_commits_total", outcome="failure"))
    exit_status = service.terminate()
    print(
        result.summary(
            "broker_restart",
            down_s=DOWN_S,
            delivered_at_stop=at_stop,
            partitions=4,
            rebalances=rebalances,
            failed_commits=failed_commits,
        )
    )
    assert result.lost == [], result.lost[:20]
    assert exit_status == 0, service.log_tail()
    assert result.duplicates < EVENTS, result.summary("broker_restart")

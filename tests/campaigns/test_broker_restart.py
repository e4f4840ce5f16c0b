"""The Kafka broker restarts in the middle of a run.

The test gets a broker of its own (dev/kafka_local.py, like the session's), so stopping it
cannot disturb any other test's topics or groups. The service keeps running while the broker
is away (no exit, no crash loop), and once it is back everything is finished: every event id
delivered or in the DLQ, every offset committed. Duplicates are counted and printed (a commit
that could not reach the broker is redone, so some records may be sent again).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dev.kafka_local import Broker
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
    service = bed.service(
        LOG_LEVEL="WARNING",
        MAX_IN_FLIGHT_RECORDS="1000",
        BATCH_MAX_RECORDS="100",
        CLEVERTAP_MAX_IN_FLIGHT="2",
    )
    service.wait_ready()
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
    exit_status = service.terminate()
    print(
        result.summary("broker_restart", down_s=DOWN_S, delivered_at_stop=at_stop, restarts=1, partitions=4)
    )
    assert result.lost == [], result.lost[:20]
    assert exit_status == 0, service.log_tail()
    assert result.duplicates < EVENTS, result.summary("broker_restart")

"""CleverTap down for longer than the retry budget, then back, then `dlq redrive`.

While the fake answers 503 to everything, every record is retried until
DELIVERY_RETRY_BUDGET_SECONDS (2 s here) runs out and goes to the DLQ as
`deliver`/`retries_exhausted`; its offset is committed (the DLQ write is the outcome). When
CleverTap is back, the real `clevertap-consumer dlq redrive` publishes the dead letters to their
source topic, the running service reads them again, and every event id reaches CleverTap
exactly once. The DLQ itself is left as it was (README, "dlq redrive": redriving twice would
publish twice), so a second `--dry-run` still counts every record.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from consumer.dlq_admin import REDRIVE_HEADER
from consumer.source import message_headers
from tests.support import members
from tests.support.campaign import books, campaign_bed, delivered_ids, events
from tests.support.fake_clevertap import FakeCleverTapProcess
from tests.support.kafka import KafkaBed
from tests.support.service import Bed, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

DESTINATIONS = 4
EVENTS = 4000


@pytest.fixture
def down_bed(
    kafka: KafkaBed,
    start_fake: Callable[..., FakeCleverTapProcess],
    new_topic: Callable[..., str],
    tmp_path: Path,
) -> Iterator[Bed]:
    yield from campaign_bed(kafka, start_fake, new_topic, tmp_path, n_destinations=DESTINATIONS, partitions=4)


def _redrive(bed: Bed, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer", "dlq", "redrive", "--topic", bed.dlq_topic, "--yes", *extra],
        env=bed.env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def test_clevertap_down_past_the_budget_then_redrive_delivers_each_event_once(down_bed: Bed) -> None:
    bed = down_bed
    bed.fake.set_faults(down=True)
    bed.produce(events(EVENTS, DESTINATIONS))
    service = members.start(bed, DELIVERY_RETRY_BUDGET_SECONDS="2", LOG_LEVEL="WARNING")
    bed.wait_committed_to_end(timeout=120)  # every record is in the DLQ: nothing waits
    down = books(bed, EVENTS)
    assert len(down.delivered) == 0
    assert set(down.dead_lettered) == set(range(EVENTS)), down.summary("clevertap_down")
    assert set(down.dead_lettered.values()) == {("deliver", "retries_exhausted")}
    assert bed.fake.stats()["requests"].get("503", 0) > 0

    bed.fake.set_faults()  # CleverTap is back
    redriven = _redrive(bed)
    assert redriven.returncode == 0, redriven.stderr[-2000:]
    assert (
        redriven.stdout.splitlines()[-1] == f"redriven {EVENTS}, skipped by filter 0, unroutable 0, failed 0"
    )
    assert bed.end_total() == 2 * EVENTS
    wait_for(lambda: len(delivered_ids(bed.fake)) >= EVENTS, 120, service.log_tail)
    bed.wait_committed_to_end(timeout=120)
    result = books(bed, EVENTS)
    assert service.running, service.log_tail()
    assert service.terminate() == 0, service.log_tail()

    # Each redriven copy names a distinct DLQ record: every dead letter came back exactly once.
    refs = [
        dict(message_headers(m)).get(REDRIVE_HEADER) for m in bed.kafka.consume_all(bed.topic, 2 * EVENTS)
    ]
    redrive_refs = [r for r in refs if r is not None]
    again = _redrive(bed, "--dry-run")
    print(result.summary("clevertap_down_redrive", redriven=len(redrive_refs), budget_s=2))
    assert result.lost == [], result.lost[:20]
    assert len(result.delivered) == EVENTS
    assert result.duplicates == 0, result.summary("clevertap_down_redrive")
    assert len(redrive_refs) == EVENTS
    assert len(set(redrive_refs)) == EVENTS
    assert sum(bed.kafka.end_offsets(bed.dlq_topic).values()) == EVENTS, (
        "redriven records delivered, none back"
    )
    assert again.stdout.splitlines()[-1] == f"would redrive {EVENTS}, skipped by filter 0, unroutable 0"

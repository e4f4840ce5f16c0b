"""One sick account stalls no one (issue 13), through the real broker and the fake CleverTap.

Two accounts share every partition (the same users send to both destinations). One account
stops answering (every request hangs until the client times out) or refuses its passcode with
`onAuthFailure: hold`; the other must get all its records while the sick one is still stuck,
because the sick account's records beyond its in-flight budget are deferred, not allowed to
pause the partitions. Once the sick account recovers, its deferred records are read again from
Kafka and delivered: nothing lost, nothing twice, every offset committed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.alerts import alert_annotations, assert_fires
from tests.support.service import DESTINATIONS, Bed, Expected, ServiceProcess, wait_for

SICK, HEALTHY = "ACC-ONE", "ACC-TWO"  # dest-one, dest-two in tests/support/service.py

# A small budget so the sick account fills it quickly; small batches so its stuck batches are
# few records each; a long retry budget so nothing of the sick account is dead-lettered.
SMALL_BUDGET = {
    "MAX_IN_FLIGHT_RECORDS_PER_ACCOUNT": "60",
    "BATCH_MAX_RECORDS": "20",
    "CLEVERTAP_TIMEOUT_SECONDS": "1",
    "DELIVERY_RETRY_BUDGET_SECONDS": "600",
}


def _events(n: int) -> list[dict[str, Any]]:
    """`n` users, each with one event for the sick and one for the healthy destination, keyed by
    user: both accounts' records sit interleaved in the same partitions."""
    out = []
    for i in range(n):
        for dest in ("dest-one", "dest-two"):
            out.append(
                {
                    "type": "track",
                    "event": "Iso Step",
                    "userId": f"user-{i}",
                    "messageId": f"{dest}-{i}",
                    "properties": {"i": i},
                    "timestamp": "2026-12-01T10:00:00Z",
                    "destinationId": dest,
                }
            )
    return out


def _healthy_done_while_sick_stuck(bed: Bed, events: list[dict[str, Any]], **env: str) -> Expected:
    expected = Expected(events)
    bed.produce(events)
    service = bed.service(**SMALL_BUDGET, **env)
    service.wait_ready()
    healthy = sum(expected.records[HEALTHY].values())
    wait_for(
        lambda: len(bed.fake.records(HEALTHY)) >= healthy,
        120,
        lambda: f"healthy delivered {len(bed.fake.records(HEALTHY))} of {healthy}\n{service.log_tail()}",
    )
    # Every healthy record arrived while the sick account is still stuck...
    assert bed.fake.records(SICK) == []
    deferred = service.metric_sum("clevertap_consumer_account_deferred_records", account=SICK)
    assert deferred > 0, "the sick account's records beyond its budget were deferred"
    assert service.metric_sum("clevertap_consumer_account_in_flight_records", account=SICK) <= 60 + 20
    # ...and the watermark waits for the sick account's records: nothing of them is committed past.
    assert bed.committed_total() < bed.end_total()
    return expected


def _deferring_alert_fires(service: ServiceProcess, promtool: Path, tmp_path: Path) -> None:
    """ClevertapConsumerAccountDeferring against the series scraped from the running service:
    its deferred-records gauges as they are now, held for 15 minutes, fire for the sick account
    only (after its 10 minutes), and not before."""
    name = "clevertap_consumer_account_deferred_records"
    scraped = {dict(labels)["account"]: v for (n, labels), v in service.metrics().items() if n == name}
    assert scraped.get(SICK, 0) > 0, scraped
    assert scraped.get(HEALTHY, 0) == 0, scraped
    series = [
        {
            "series": f'{name}{{account="{account}", job="clevertap-consumer", instance="pod-a"}}',
            "values": f"{value:g}x15",
        }
        for account, value in scraped.items()
    ]
    assert scraped[SICK] < 1000  # `humanize` prints it as is
    assert_fires(
        promtool,
        tmp_path,
        series,
        "ClevertapConsumerAccountDeferring",
        quiet_at="9m",
        fires_at="12m",
        labels={"severity": "warning", "job": "clevertap-consumer", "account": SICK},
        expected_annotations=alert_annotations(
            "ClevertapConsumerAccountDeferring",
            {"{{ $labels.account }}": SICK, "{{ $value | humanize }}": f"{scraped[SICK]:g}"},
        ),
    )


def test_a_stalled_account_waits_alone_and_gets_everything_once_it_recovers(
    bed: Bed, promtool: Path, tmp_path: Path
) -> None:
    events = _events(400)
    bed.fake.set_faults(account=SICK, timeout_rate=1.0)
    expected = _healthy_done_while_sick_stuck(bed, events)
    _deferring_alert_fires(bed.services[0], promtool, tmp_path)

    bed.fake.set_faults(account=SICK, timeout_rate=0.0)
    bed.wait_committed_to_end(timeout=120)
    assert expected.compare(bed.delivered()) == (0, 0)  # nothing lost, nothing twice
    assert bed.dead_letters(1, timeout=2) == []
    service = bed.services[0]
    assert service.metric_sum("clevertap_consumer_partition_rewinds_total") > 0
    assert service.metric_sum("clevertap_consumer_account_deferred_records", account=SICK) == 0


def test_a_refused_account_in_hold_mode_waits_alone_until_its_passcode_works(bed: Bed) -> None:
    doc = json.loads(json.dumps(DESTINATIONS))
    doc["destinations"][0]["onAuthFailure"] = "hold"
    bed.destinations_file.write_text(json.dumps(doc))
    events = _events(300)
    bed.fake.set_faults(account=SICK, refuse=True)
    expected = _healthy_done_while_sick_stuck(bed, events)

    bed.fake.set_faults(account=SICK, refuse=False)  # the next probe (every 30 s) closes the breaker
    bed.wait_committed_to_end(timeout=120)
    assert expected.compare(bed.delivered()) == (0, 0)
    assert bed.dead_letters(1, timeout=2) == []

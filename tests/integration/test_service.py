"""The whole service against a real Kafka broker and a fake CleverTap: nothing is lost.

Each test runs `clevertap-consumer run` as its own process, the way it runs in production, and
judges it only by what can be observed from outside: records at (fake) CleverTap, records in the
DLQ topic, committed offsets, exit status, metrics and logs.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from consumer.sample import sample_events
from consumer.source import message_headers
from consumer.transform import Accepted, transform
from tests.support.service import DESTINATION_IDS, Bed, Expected, wait_for

pytestmark = pytest.mark.kafka


def _events(n: int, seed: int) -> list[dict[str, Any]]:
    return list(sample_events(n, seed=seed, destinations=DESTINATION_IDS))


def _deliverable(events: list[dict[str, Any]], bed: Bed) -> list[dict[str, Any]]:
    """Only events that become at least one CleverTap record (so every offset needs a delivery)."""
    from consumer.destinations import parse_destinations
    from tests.support.service import DESTINATIONS

    routes = {d.id: d.transform_config() for d in parse_destinations(DESTINATIONS).destinations}
    out = []
    for e in events:
        result = transform(e, routes[e["destinationId"]])
        if isinstance(result, Accepted) and result.records:
            out.append(e)
    return out


def test_every_event_arrives_as_the_transform_says_and_offsets_reach_the_end(
    bed: Bed, promtool: Path
) -> None:
    events = _events(1500, seed=3)
    expected = Expected(events)
    assert expected.rejected, "the sample should exercise rejections too"
    assert expected.filtered, "and the event filter"
    bed.produce(events)
    service = bed.service()
    service.wait_ready()
    bed.wait_committed_to_end()

    assert bed.delivered() == expected.records
    dead = bed.dead_letters(sum(expected.rejected.values()) + 1, timeout=5)
    reasons = Counter((dict(message_headers(m))["dlq.reason"] or b"").decode() for m in dead)
    assert reasons == expected.rejected

    # The counters an operator reads tell the same story.
    finished = {
        outcome: service.metric_sum("clevertap_consumer_records_finished_total", outcome=outcome)
        for outcome in ("delivered", "dead_lettered", "filtered")
    }
    assert service.metric_sum("clevertap_consumer_records_consumed_total") == len(events)
    assert sum(finished.values()) == len(events)
    assert finished["filtered"] == expected.filtered
    assert finished["dead_lettered"] == sum(expected.rejected.values())
    assert service.metric_sum("clevertap_consumer_dlq_records_total") == len(dead)
    assert service.metric_sum("clevertap_consumer_records_delivered_total") == expected.total_records
    assert service.metric_sum("clevertap_consumer_in_flight_records") == 0
    lint = subprocess.run(
        [str(promtool), "check", "metrics"],
        input=service.metrics_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert (lint.returncode, lint.stdout.strip()) == (0, ""), lint.stdout + lint.stderr
    assert service.terminate() == 0


def test_poison_messages_go_to_the_dlq_with_reasons_and_their_offsets_commit(bed: Bed) -> None:
    good = {"type": "track", "event": "Signed Up", "userId": "u1", "destinationId": "dest-one"}
    unknown = {**good, "destinationId": "nobody"}
    anonymous = {"type": "track", "event": "Signed Up", "anonymousId": "a1", "destinationId": "dest-one"}
    bad_education = {  # the default profile sends Education as given; CleverTap refuses it (518)
        "type": "identify",
        "userId": "u2",
        "traits": {"education": "PhD"},
        "destinationId": "dest-one",
    }
    values = [
        bed.encoder.encode(good),
        b"\x13 definitely not avro",
        bed.encoder.encode(unknown),
        bed.encoder.encode(anonymous),
        bed.encoder.encode(bad_education),
        bed.encoder.encode({**good, "userId": "u3"}),
    ]
    bed.kafka.produce(bed.topic, values, partition=0)
    service = bed.service()
    service.wait_ready()
    bed.wait_committed_to_end()

    dead = {
        int(dict(message_headers(m))["dlq.source.offset"] or b"-1"): m for m in bed.dead_letters(5, timeout=5)
    }
    assert sorted(dead) == [1, 2, 3, 4]
    expected = {
        1: ("decode", None),
        2: ("route", "unknown_destination"),
        3: ("transform", "anonymous_not_allowed"),
        4: ("deliver", "clevertap_rejected"),
    }
    for offset, (stage, reason) in expected.items():
        headers = {k: (v or b"").decode() for k, v in message_headers(dead[offset])}
        assert dead[offset].value() == values[offset], "the original bytes, untouched"
        assert headers["dlq.stage"] == stage
        if reason is not None:
            assert headers["dlq.reason"] == reason
        assert headers["dlq.source.topic"] == bed.topic
        assert headers["dlq.source.partition"] == "0"
        assert headers["dlq.message"]
        assert "pass-one" not in str(headers), "never the passcode"
    assert {k: (v or b"").decode() for k, v in message_headers(dead[4])}["dlq.clevertap.code"] == "518"
    assert "dlq.destination.id" not in dict(message_headers(dead[2])), "an unknown id routes nowhere"
    assert {k: (v or b"").decode() for k, v in message_headers(dead[3])}["dlq.destination.id"] == "dest-one"
    assert sorted(r["identity"] for r in bed.fake.records("ACC-ONE") if r.get("type") == "event") == [
        "u1",
        "u3",
    ]
    assert service.terminate() == 0


def test_nothing_is_committed_while_clevertap_is_down_and_a_restart_delivers_everything(bed: Bed) -> None:
    events = _deliverable(_events(400, seed=5), bed)
    expected = Expected(events)
    bed.fake.set_faults(down=True)
    bed.produce(events)
    service = bed.service(DELIVERY_RETRY_BUDGET_SECONDS="600", DRAIN_TIMEOUT_SECONDS="3")
    service.wait_ready()
    wait_for(lambda: bed.fake.stats()["requests"].get("503", 0) >= 8, 60, lambda: str(bed.fake.stats()))
    time.sleep(1.5)  # several commit intervals (200 ms) pass while every attempt fails
    assert bed.kafka.committed(bed.group, bed.topic) == {}
    assert service.terminate() == 0, service.log_tail()
    assert bed.kafka.committed(bed.group, bed.topic) == {}, "a drain that cannot deliver commits nothing"

    bed.fake.set_faults(down=False)
    bed.service().wait_ready()
    bed.wait_committed_to_end()
    assert bed.delivered() == expected.records
    assert bed.dead_letters(1, timeout=3) == []


# Delivery slowed to at most 2 accounts x 2 requests x 50 records per 100 ms (2000 records/s),
# so a run of 5000 events is still in the middle when the test interrupts it.
SLOW = {"BATCH_MAX_RECORDS": "50", "CLEVERTAP_MAX_IN_FLIGHT": "2", "MAX_IN_FLIGHT_RECORDS": "1000"}


def test_sigterm_mid_run_loses_nothing_and_duplicates_nothing(bed: Bed) -> None:
    events = _events(5000, seed=7)
    expected = Expected(events)
    bed.fake.set_faults(latency_ms=100)
    bed.produce(events)
    first = bed.service(**SLOW)
    first.wait_ready()
    wait_for(lambda: bed.delivered_count() >= 600, 90)
    assert first.terminate() == 0, first.log_tail()
    partly = bed.committed_total()
    assert 0 < partly < bed.end_total(), "stopped in the middle"

    bed.fake.set_faults(latency_ms=0)
    bed.service().wait_ready()
    bed.wait_committed_to_end()
    assert expected.compare(bed.delivered()) == (0, 0)


def test_kill_9_mid_run_loses_nothing(bed: Bed) -> None:
    events = _events(5000, seed=11)
    expected = Expected(events)
    bed.fake.set_faults(latency_ms=100)
    bed.produce(events)
    first = bed.service(**SLOW)
    first.wait_ready()
    wait_for(lambda: bed.delivered_count() >= 600, 90)
    first.kill()
    assert bed.committed_total() < bed.end_total(), "killed in the middle"

    bed.fake.set_faults(latency_ms=0)
    bed.service().wait_ready()
    bed.wait_committed_to_end()
    missing, duplicates = expected.compare(bed.delivered())
    assert missing == 0
    # At-least-once: what was delivered after the last commit comes again, bounded by what can
    # be in flight (records read but not committed) at the moment of the kill.
    assert duplicates <= expected.total_records


def test_a_second_consumer_joining_mid_run_loses_nothing(bed: Bed) -> None:
    events = _events(8000, seed=13)
    expected = Expected(events)
    bed.fake.set_faults(latency_ms=30)
    bed.produce(events)
    # Slow, narrow delivery and a small in-flight bound keep most events in Kafka when the
    # second member joins, so it has partitions with work to take over.
    slow = {"MAX_IN_FLIGHT_RECORDS": "300", "BATCH_MAX_RECORDS": "25", "CLEVERTAP_MAX_IN_FLIGHT": "1"}
    first = bed.service(**slow)
    first.wait_ready()
    wait_for(lambda: bed.delivered_count() >= 500, 90)
    second = bed.service(**slow)
    second.wait_ready()
    wait_for(
        lambda: all(s.metric_sum("clevertap_consumer_assigned_partitions") > 0 for s in (first, second)),
        60,
        lambda: "both members should own partitions after the rebalance",
    )
    bed.fake.set_faults(latency_ms=0)
    bed.wait_committed_to_end()
    missing, duplicates = expected.compare(bed.delivered())
    assert missing == 0
    assert duplicates == 0, "revocation drains in-flight batches and commits before handing over"
    assert first.metric_sum("clevertap_consumer_rebalances_total", event="revoked") >= 1
    assert second.metric_sum("clevertap_consumer_records_delivered_total") > 0, second.log_tail()
    assert first.terminate() == 0
    assert second.terminate() == 0


def test_a_broker_restart_mid_run_loses_nothing(bed: Bed) -> None:
    if bed.kafka.broker is None:
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS names an external broker this test cannot restart")
    events = _events(5000, seed=17)
    expected = Expected(events)
    bed.fake.set_faults(latency_ms=100)
    bed.produce(events)
    service = bed.service(**SLOW)
    service.wait_ready()
    wait_for(lambda: bed.delivered_count() >= 500, 90)
    bed.kafka.broker.stop()
    time.sleep(2)
    bed.kafka.broker.start()
    bed.fake.set_faults(latency_ms=0)
    bed.wait_committed_to_end(timeout=120)
    missing, _ = expected.compare(bed.delivered())
    assert missing == 0, service.log_tail()
    assert service.running, f"the service rides out a broker restart:\n{service.log_tail()}"
    assert service.terminate() == 0


def test_clevertap_faults_are_retried_and_nothing_is_lost(bed: Bed) -> None:
    events = _deliverable(_events(3000, seed=19), bed)
    expected = Expected(events)
    bed.fake.set_faults(
        status_5xx_rate=0.15, status_429_rate=0.15, reset_rate=0.05, partial_rate=0.02, seed=4
    )
    bed.produce(events)
    service = bed.service()
    service.wait_ready()
    bed.wait_committed_to_end(timeout=120)
    missing, _ = expected.compare(bed.delivered())
    assert missing == 0
    assert bed.dead_letters(1, timeout=3) == []
    stats = bed.fake.stats()
    assert stats["requests"].get("429", 0) > 0
    assert sum(n for status, n in stats["requests"].items() if status.startswith("5")) > 0
    assert service.metric_sum("clevertap_consumer_delivery_retries_total") > 0
    assert service.terminate() == 0

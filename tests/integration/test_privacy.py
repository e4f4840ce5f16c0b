"""Privacy through the running service: real Kafka, a fake CleverTap, `clevertap-consumer run`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consumer.deletion import build_request
from consumer.source import message_headers
from tests.privacy.rudderstack_config import full_config
from tests.support.fake_clevertap import DEFAULT_ACCOUNTS
from tests.support.service import Bed, wait_for

pytestmark = pytest.mark.kafka


def _pasted(dest_id: str, account: str, **extra: Any) -> dict[str, Any]:
    return {"id": dest_id, **full_config(accountId=account, passcode=DEFAULT_ACCOUNTS[account]), **extra}


def test_integrations_and_consent_withhold_events_in_both_profiles(bed: Bed) -> None:
    bed.destinations_file.write_text(
        json.dumps(
            {
                "destinations": [
                    _pasted("dest-default", "ACC-ONE"),
                    _pasted("dest-rudder", "ACC-TWO", profile="rudderstack"),
                ]
            }
        )
    )
    cases: list[tuple[str, dict[str, Any], bool]] = [
        ("plain", {}, True),
        ("all-off", {"integrations": {"All": False}}, False),
        ("ct-off", {"integrations": {"All": True, "CLEVERTAP": False}}, False),
        ("only-ct", {"integrations": {"All": False, "CleverTap": True}}, True),
        (
            "denied",
            {"context": {"consentManagement": {"provider": "custom", "deniedConsentIds": ["marketing"]}}},
            False,
        ),
        (
            "other",
            {"context": {"consentManagement": {"provider": "custom", "deniedConsentIds": ["sms"]}}},
            True,
        ),
    ]
    events = [
        {"type": "track", "event": "Signed Up", "userId": f"{dest}-{name}", "destinationId": dest, **extra}
        for dest in ("dest-default", "dest-rudder")
        for name, extra, _ in cases
    ]
    bed.produce(events)
    service = bed.service()
    service.wait_ready()
    bed.wait_committed_to_end()

    for dest, account in (("dest-default", "ACC-ONE"), ("dest-rudder", "ACC-TWO")):
        got = sorted(str(r.get("identity")) for r in bed.fake.records(account))
        assert got == sorted(f"{dest}-{name}" for name, _, ok in cases if ok), dest
        assert (
            service.metric_sum(
                "clevertap_consumer_events_filtered_total", destination=dest, reason="integrations_disabled"
            )
            == 2
        )
        assert (
            service.metric_sum(
                "clevertap_consumer_events_filtered_total", destination=dest, reason="consent_denied"
            )
            == 1
        )
    assert bed.dead_letters(1, timeout=2) == []
    assert service.terminate() == 0
    log = service.log_path.read_text()
    warnings = [line for line in log.splitlines() if "device-mode" in line]
    assert len(warnings) == 1, warnings
    assert "useNativeSDK" in warnings[0]
    assert "connectionMode" in warnings[0]
    assert "tok-secret-123" not in log
    assert DEFAULT_ACCOUNTS["ACC-ONE"] not in log


# ---------------------------------------------------------------------------------------------
# User deletion through real Kafka


def _delete_users(bed: Bed, topic: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer", "delete-users", "--topic", topic, *args],
        env=bed.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _regulation_committed(bed: Bed, topic: str) -> dict[int, int]:
    return bed.kafka.committed(f"{bed.group}-regulation", topic)


def test_deletion_requests_reach_the_delete_endpoint_as_specified_and_commit(
    bed: Bed, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(suffix="-regulation")
    ticket = tmp_path / "ticket.txt"
    ticket.write_text("\n".join(f"user-{i}" for i in range(450)) + '\n{"cleverTapId": "__g1"}\n')
    published = _delete_users(
        bed, topic, "--destination", "dest-one", "--file", str(ticket), "--clevertap-id", "__g2"
    )
    assert published.returncode == 0, published.stderr
    assert "450 userIds and 2 cleverTapIds" in published.stdout
    bed.kafka.produce(topic, [b"not json", build_request("nobody", ["u1"], [])])

    bed.fake.set_faults(latency_ms=300)  # calls overlap: the per-account cap of 3 is exercised
    service = bed.service(KAFKA_REGULATION_TOPIC=topic)
    service.wait_ready()
    wait_for(lambda: _regulation_committed(bed, topic) == {0: 3}, 60, service.log_tail)

    deletions = bed.fake.deletions("ACC-ONE")
    assert all(len(d) == 2 for d in deletions), "one key per request, never identity and guid together"
    identities = [d["identity"] for d in deletions if "identity" in d]
    assert sorted(len(i) for i in identities) == [50, 100, 100, 100, 100]
    assert sorted(u for i in identities for u in i) == sorted(f"user-{i}" for i in range(450))
    assert [sorted(d["guid"]) for d in deletions if "guid" in d] == [["__g1", "__g2"]]
    stats = bed.fake.stats()
    assert stats["max_concurrency"]["ACC-ONE (delete)"] == 3
    assert stats["requests"].get("429", 0) == 0

    dead = bed.dead_letters(2, timeout=10)
    reasons = sorted((dict(message_headers(m))["dlq.reason"] or b"").decode() for m in dead)
    assert reasons == ["malformed_request", "unknown_destination"]
    assert {dict(message_headers(m))["dlq.source.topic"] for m in dead} == {topic.encode()}
    assert service.metric_sum("clevertap_consumer_deletion_requests_total", outcome="deleted") == 1
    assert service.metric_sum("clevertap_consumer_deletion_requests_total", outcome="dead_lettered") == 2
    assert service.terminate() == 0


def test_a_deletion_is_committed_only_after_success_and_never_blocks_other_accounts(
    bed: Bed, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(suffix="-regulation")
    bed.fake.set_faults(account="ACC-TWO", down=True)
    assert _delete_users(bed, topic, "--destination", "dest-two", "--user-id", "gone-1").returncode == 0
    events = [
        {"type": "track", "event": "Signed Up", "userId": f"u{i}", "destinationId": "dest-one"}
        for i in range(50)
    ]
    bed.produce(events)
    service = bed.service(KAFKA_REGULATION_TOPIC=topic, DELIVERY_RETRY_BUDGET_SECONDS="600")
    service.wait_ready()
    bed.wait_committed_to_end()  # ACC-ONE's events flow while ACC-TWO's deletion keeps failing
    assert len(bed.fake.records("ACC-ONE")) == 50
    wait_for(lambda: bed.fake.stats()["requests"].get("503", 0) >= 3, 60, lambda: str(bed.fake.stats()))
    time.sleep(1)
    assert _regulation_committed(bed, topic) == {}
    assert service.terminate() == 0, service.log_tail()
    assert _regulation_committed(bed, topic) == {}, "a stop mid-retry commits nothing"
    assert bed.fake.deletions() == []

    bed.fake.set_faults(account="ACC-TWO", down=False)
    restarted = bed.service(KAFKA_REGULATION_TOPIC=topic)
    restarted.wait_ready()
    wait_for(lambda: _regulation_committed(bed, topic) == {0: 1}, 60, restarted.log_tail)
    assert bed.fake.deletions() == [{"account": "ACC-TWO", "identity": ["gone-1"]}]
    assert bed.dead_letters(1, timeout=2) == []
    assert restarted.terminate() == 0


def test_a_deletion_waits_for_older_events_of_the_topic_to_be_delivered(
    bed: Bed, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(suffix="-regulation")
    bed.fake.set_faults(account="ACC-TWO", down=True)  # these events cannot be delivered yet
    bed.produce(
        [
            {"type": "track", "event": "Signed Up", "userId": f"u{i}", "destinationId": "dest-two"}
            for i in range(20)
        ]
    )
    assert _delete_users(bed, topic, "--destination", "dest-one", "--user-id", "u1").returncode == 0
    service = bed.service(KAFKA_REGULATION_TOPIC=topic, DELIVERY_RETRY_BUDGET_SECONDS="600")
    service.wait_ready()
    wait_for(lambda: bed.fake.stats()["requests"].get("503", 0) >= 3, 60, lambda: str(bed.fake.stats()))
    time.sleep(2)
    assert bed.fake.deletions() == [], "older events are still in flight: the deletion waits"
    assert _regulation_committed(bed, topic) == {}

    bed.fake.set_faults(account="ACC-TWO", down=False)
    wait_for(lambda: _regulation_committed(bed, topic) == {0: 1}, 90, service.log_tail)
    assert bed.fake.deletions() == [{"account": "ACC-ONE", "identity": ["u1"]}]
    assert len(bed.fake.records("ACC-TWO")) == 20, "the events were delivered before the deletion"
    assert service.terminate() == 0

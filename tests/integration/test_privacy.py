"""Privacy through the running service: real Kafka, a fake CleverTap, `clevertap-consumer run`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.privacy.rudderstack_config import full_config
from tests.support.fake_clevertap import DEFAULT_ACCOUNTS
from tests.support.service import Bed

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

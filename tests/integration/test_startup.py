"""Start-up refuses bad configuration with a message naming it, and secrets never leak."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from consumer.source import message_headers
from tests.support.service import Bed


def _run(bed: Bed, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer", "run"],
        env=bed.env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KAFKA_TOPICS": " "}, "KAFKA_TOPICS"),
        ({"CLEVERTAP_MAX_IN_FLIGHT": "40"}, "CLEVERTAP_MAX_IN_FLIGHT"),
        ({"METRICS_PORT": "http"}, "METRICS_PORT"),
        ({"DESTINATIONS_FILE": "/nonexistent/destinations.yaml"}, "/nonexistent/destinations.yaml"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_it(bed: Bed, env: dict[str, str], named: str) -> None:
    done = _run(bed, **env)
    assert done.returncode == 2
    assert named in done.stderr


def test_a_bad_destination_stops_start_up_naming_entry_and_key(bed: Bed) -> None:
    bed.destinations_file.write_text(
        json.dumps(
            {"destinations": [{"id": "d", "accountId": "A", "passcode": "secret-pw-1", "region": "eu9"}]}
        )
    )
    done = _run(bed)
    assert done.returncode == 2
    assert "destinations[0].region" in done.stderr
    assert "secret-pw-1" not in done.stderr
    bed.destinations_file.write_text(
        json.dumps({"destinations": [{"id": "d", "accountId": "A", "passcodeEnv": "NOT_SET_ANYWHERE"}]})
    )
    done = _run(bed)
    assert done.returncode == 2
    assert "NOT_SET_ANYWHERE" in done.stderr


def test_secrets_stay_out_of_logs_metrics_and_dead_letters(bed: Bed) -> None:
    passcode, sasl = "wrong-passcode-4f1c", "sasl-password-9b2e"
    bed.destinations_file.write_text(
        json.dumps({"destinations": [{"id": "dest-one", "accountId": "ACC-ONE", "passcode": passcode}]})
    )
    bed.produce(
        [
            {"type": "track", "event": "Signed Up", "userId": f"u{i}", "destinationId": "dest-one"}
            for i in range(5)
        ]
    )
    service = bed.service(LOG_LEVEL="DEBUG", KAFKA_SASL_USERNAME="svc", KAFKA_SASL_PASSWORD=sasl)
    service.wait_ready()
    bed.wait_committed_to_end()  # CleverTap answers 401: every event goes to the DLQ
    scrape = str(service.metrics())
    dead = bed.dead_letters(5)
    assert len(dead) == 5
    reasons = {dict(message_headers(m))["dlq.reason"] for m in dead}
    assert reasons == {b"unauthorized"}
    assert service.terminate() == 0
    log = service.log_path.read_text()
    assert "401" in log, "the failure itself is logged"
    for secret in (passcode, sasl):
        assert secret not in log
        assert secret not in scrape
        for m in dead:
            assert secret.encode() not in b"".join((v or b"") for _, v in message_headers(m))

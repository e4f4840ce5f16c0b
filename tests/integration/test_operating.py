"""Operating the service: check-config's full report and probes, start-up errors that say what
is wrong in the configured log format, the DLQ topic's creation settings, replay's summary."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource

from consumer.cli import main
from consumer.sample import sample_events
from dev.kafka_local import free_port
from tests.support.schema_registry import running_registry
from tests.support.service import DESTINATION_IDS, Bed, Expected

pytestmark = pytest.mark.kafka


def _cli(bed: Bed, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer", *args],
        env=bed.env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_config_reports_every_problem_of_a_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        "destinations:\n"
        "  - {id: a, accountId: '', passcode: secret-pw-7, region: mars}\n"
        "  - {id: a, accountId: B, passcodeFile: /nonexistent/pc}\n"
        "  - {id: c, accountId: C, passcodeEnv: NOT_SET_ANYWHERE_7}\n"
        "  - {id: d, accountId: D}\n"
    )
    result = CliRunner().invoke(main, ["check-config", "--destinations", str(path)])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    for named in (
        "destinations[0].accountId",
        "destinations[0].region",
        "destinations[3]: give exactly one of passcode",
        "duplicate destination id 'a'",
        "cannot read passcodeFile '/nonexistent/pc'",
        "NOT_SET_ANYWHERE_7 is not set",
    ):
        assert sum(named in e for e in errors) == 1, (named, result.output)
    assert "secret-pw-7" not in result.output


def test_check_config_probe_passes_against_a_real_broker_and_clevertap(bed: Bed) -> None:
    done = _cli(bed, "check-config", "--probe")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith(f"ok   kafka {bed.kafka.bootstrap}: reachable") for line in lines)
    assert any(line.startswith(f"ok   topic {bed.topic}: 4 partition(s)") for line in lines)
    for dest in DESTINATION_IDS:
        assert any(line.startswith(f"ok   destination {dest} ") for line in lines), done.stderr
    assert json.loads(done.stdout)["destinations"][0]["id"] == "dest-one"
    # The probes were validate-only uploads: answered, nothing stored.
    assert bed.fake.stats()["requests"].get("dry_run") == len(DESTINATION_IDS)
    assert bed.fake.records() == []


def test_check_config_probe_names_a_rejected_passcode(bed: Bed) -> None:
    bed.destinations_file.write_text(
        json.dumps(
            {
                "destinations": [
                    {"id": "good", "accountId": "ACC-ONE", "passcode": "pass-one"},
                    {"id": "bad", "accountId": "ACC-TWO", "passcode": "wrong-pw-5e1", "region": "IN"},
                ]
            }
        )
    )
    done = _cli(bed, "check-config", "--probe")
    assert done.returncode == 2, done.stderr
    bad = [line for line in done.stderr.splitlines() if line.startswith("FAIL destination bad ")]
    assert len(bad) == 1, done.stderr
    assert "HTTP 401" in bad[0]
    assert "passcode is wrong" in bad[0]
    assert "IN" in bad[0], "the configured region is named"
    assert any(line.startswith("ok   destination good ") for line in done.stderr.splitlines())
    assert "wrong-pw-5e1" not in done.stderr + done.stdout


def test_check_config_probe_reports_an_unreachable_broker(bed: Bed) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    done = _cli(bed, "check-config", "--probe", "--bootstrap-servers", nowhere)
    assert done.returncode == 1, done.stderr
    assert any(line.startswith(f"FAIL kafka {nowhere}: no answer") for line in done.stderr.splitlines())
    assert any(line.startswith("ok   destination dest-one") for line in done.stderr.splitlines()), (
        "the other probes still run"
    )


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_an_unreachable_broker_at_start_up_is_reported_as_that(bed: Bed) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    done = _cli(bed, "run", KAFKA_BOOTSTRAP_SERVERS=nowhere, LOG_FORMAT="json")
    assert done.returncode == 1, done.stderr
    errors = [r for r in _json_lines(done.stderr) if r["level"] == "ERROR"]
    assert len(errors) == 1, done.stderr
    assert f"cannot reach Kafka at {nowhere}" in str(errors[0]["message"])
    assert "DLQ_TOPIC" not in done.stderr
    assert errors[0]["exit_status"] == 1


def test_a_bad_setting_is_reported_in_the_configured_log_format(bed: Bed) -> None:
    done = _cli(bed, "run", CLEVERTAP_MAX_IN_FLIGHT="40", LOG_FORMAT="json")
    assert done.returncode == 2
    [error] = _json_lines(done.stderr)
    assert error["level"] == "ERROR"
    assert "CLEVERTAP_MAX_IN_FLIGHT" in str(error["message"])
    console = _cli(bed, "run", CLEVERTAP_MAX_IN_FLIGHT="40", LOG_FORMAT="console")
    assert console.returncode == 2
    assert not _json_lines(console.stderr)
    assert " ERROR " in console.stderr
    assert "CLEVERTAP_MAX_IN_FLIGHT" in console.stderr


def test_the_service_creates_the_dlq_topic_with_the_configured_partitions_and_retention(bed: Bed) -> None:
    dlq = f"dlq-{uuid.uuid4().hex[:8]}"
    service = bed.service(DLQ_TOPIC=dlq, DLQ_TOPIC_PARTITIONS="2", DLQ_TOPIC_RETENTION_MS="3600000")
    service.wait_ready()
    admin = AdminClient({"bootstrap.servers": bed.kafka.bootstrap})
    assert len(admin.list_topics(dlq, timeout=10).topics[dlq].partitions) == 2
    resource = ConfigResource(ConfigResource.Type.TOPIC, dlq)
    config = admin.describe_configs([resource])[resource].result(10)
    assert config["retention.ms"].value == "3600000"
    assert service.terminate() == 0


def test_replay_prints_a_summary_and_takes_bootstrap_servers(bed: Bed) -> None:
    events = list(sample_events(200, seed=31, destinations=DESTINATION_IDS))
    since_ms = int(time.time() * 1000) - 1000
    bed.produce(events)
    expected = Expected(events)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "consumer", "replay", "--since", str(since_ms)),
            *("--bootstrap-servers", bed.kafka.bootstrap),
        ],
        env=bed.env(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}"),  # the option wins
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    dead = sum(expected.rejected.values())
    delivered = expected.events - dead - expected.filtered
    assert done.stdout.splitlines()[-1] == (
        f"replayed 200 of 200 events: delivered {delivered}, filtered {expected.filtered},"
        f" dead-lettered {dead}"
    )
    assert bed.delivered() == expected.records


def test_check_config_probe_asks_the_schema_registry(bed: Bed) -> None:
    with running_registry(user_info="svc:registry-pw-8a") as registry:
        good = _cli(
            bed,
            "check-config",
            "--probe",
            SCHEMA_REGISTRY_URL=registry.url,
            SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO="svc:registry-pw-8a",
        )
        assert good.returncode == 0, good.stderr
        assert any(line.startswith("ok   schema registry ") for line in good.stderr.splitlines())
        wrong = _cli(
            bed,
            "check-config",
            "--probe",
            SCHEMA_REGISTRY_URL=registry.url,
            SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO="svc:wrong-registry-pw",
        )
        assert wrong.returncode == 2, wrong.stderr
        assert any("FAIL schema registry" in line and "401" in line for line in wrong.stderr.splitlines())
        assert "wrong-registry-pw" not in wrong.stderr
        registry.fail_with(503)
        down = _cli(
            bed,
            "check-config",
            "--probe",
            SCHEMA_REGISTRY_URL=registry.url,
            SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO="svc:registry-pw-8a",
        )
        assert down.returncode == 1, down.stderr
        assert any(line.startswith("FAIL schema registry") for line in down.stderr.splitlines())

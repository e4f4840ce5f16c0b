"""Start-up refuses bad configuration with a message naming it, and secrets never leak."""

from __future__ import annotations

import json
import socket
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


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"KAFKA_EXTRA_CONFIG": '{"no.such.property": "1"}'},
            "KAFKA_EXTRA_CONFIG: unknown librdkafka property",
        ),
        ({"KAFKA_EXTRA_CONFIG": '{"fetch.wait.max.ms": "soon"}'}, "KAFKA_EXTRA_CONFIG: librdkafka refuses"),
        (
            {
                "SCHEMA_REGISTRY_URL": "http://127.0.0.1:9",
                "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "no-colon-secret",
            },
            "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO: must be user:password",
        ),
        (
            {
                "SCHEMA_REGISTRY_URL": "http://svc:registry-pw-77@127.0.0.1:9",
                "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "svc:registry-pw-77",
            },
            "give the credentials once",
        ),
        ({"KAFKA_GROUP_ID": ""}, "KAFKA_GROUP_ID"),
        (
            {"KAFKA_TOPICS": "orders events!"},
            "KAFKA_TOPICS: 'orders events!' is not a valid Kafka topic name",
        ),
        ({"DLQ_TOPIC": "bad/dlq"}, "DLQ_TOPIC: 'bad/dlq' is not a valid Kafka topic name"),
        ({"DRAIN_TIMEOUT_SECONDS": "inf"}, "DRAIN_TIMEOUT_SECONDS: Input should be a finite number"),
        ({"KAFKA_SASL_PASSWORD": "k"}, "KAFKA_SASL_PASSWORD: shorter than 6 characters"),
        ({"KAFKA_EXTRA_CONFIG": '{"sasl.password": "kk"}'}, "'sasl.password': shorter than 6 characters"),
    ],
)
def test_hostile_settings_stop_start_up_naming_them(bed: Bed, env: dict[str, str], named: str) -> None:
    done = _run(bed, **env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert named in done.stderr
    assert "Traceback" not in done.stderr
    assert "registry-pw-77" not in done.stderr


def test_a_dlq_topic_that_is_also_a_source_stops_start_up(bed: Bed) -> None:
    done = _run(bed, DLQ_TOPIC=bed.topic)
    assert done.returncode == 2
    assert f"DLQ_TOPIC {bed.topic!r} is also in KAFKA_TOPICS" in done.stderr


def test_a_busy_metrics_port_is_named(bed: Bed) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = _run(bed, METRICS_PORT=str(taken.getsockname()[1]))
    assert done.returncode == 2
    assert "METRICS_PORT: cannot serve on 127.0.0.1:" in done.stderr


INLINE = "inline-passcode-31d"
# "Billion laughs": nine aliases of nine aliases ... nine levels deep, a few hundred bytes.
_LAUGHS = (
    "\n".join(
        ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    )
    + f"\ndestinations: [{{id: d, accountId: A, passcode: {INLINE}, blacklistedEvents: *l8}}]\n"
).encode()


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"destinations: " + b"[" * 20_000 + b"]" * 20_000, "nested too deeply"),
        (b'{"destinations": [{"id": "d", "accountId": "caf\xe9", "passcode": "pass-long"}]}', "not UTF-8"),
        (
            f'destinations:\n  - id: d\n    accountId: A\n    passcode: "{INLINE}\n    region: : in1\n'.encode(),
            "not valid JSON or YAML: line",
        ),
        (f"destinations:\n  - {{id: d, accountId: A, passcode: {INLINE}: x}}\n".encode(), "line 2"),
        (
            b'{"destinations": [{"id": "d", "accountId": "A", "passcode": "  "}]}',
            "destinations[0].passcode: is blank",
        ),
        (
            b'{"destinations": [{"id": "d", "accountId": " ", "passcode": "pass-long"}]}',
            "destinations[0].accountId",
        ),
        (
            b'{"destinations": [{"id": "d", "accountId": "A", "passcode": "abc"}]}',
            "destination 'd': passcode is shorter",
        ),
        (_LAUGHS, "aliases expand to more than 1,000,000 values"),
    ],
)
def test_hostile_destinations_files_stop_start_up_without_traceback_or_secret(
    bed: Bed, content: bytes, named: str
) -> None:
    bed.destinations_file.write_bytes(content)
    done = _run(bed)
    assert done.returncode == 2, done.stderr[-2000:]
    assert named in done.stderr
    assert "Traceback" not in done.stderr
    assert INLINE not in done.stderr
    check = subprocess.run(
        [sys.executable, "-m", "consumer", "check-config", "--destinations", str(bed.destinations_file)],
        env=bed.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 2
    assert named in check.stderr, "check-config refuses what start-up refuses"
    assert "Traceback" not in check.stderr
    assert INLINE not in check.stderr + check.stdout
    if named != "destination 'd': passcode is shorter":
        tool = subprocess.run(
            [
                sys.executable,
                "-m",
                "consumer",
                "transform",
                "--destination-config",
                str(bed.destinations_file),
            ],
            env=bed.env(),
            input="{}\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert tool.returncode != 0 or '"bad_input"' in tool.stdout, "the problem is reported"
        assert "Traceback" not in tool.stderr
        assert INLINE not in tool.stderr + tool.stdout


def test_secrets_in_kafka_extra_config_stay_out_of_librdkafka_lines(bed: Bed) -> None:
    """librdkafka's configuration debug and warnings quote property values; the ones that are
    credentials are registered for redaction like KAFKA_SASL_PASSWORD."""
    secret = "extra-sasl-pw-5e"
    extra = {
        "debug": "conf,generic",
        "sasl.password": secret,
        "sasl.username": "svc",
        "ssl.key.password": secret + "k",
    }
    service = bed.service(KAFKA_EXTRA_CONFIG=json.dumps(extra), LOG_LEVEL="DEBUG")
    service.wait_ready()
    assert service.terminate() == 0
    log = service.log_path.read_text()
    assert "consumer.kafka" in log, "librdkafka's own lines are in the log"
    assert secret not in log

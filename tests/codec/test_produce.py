"""`clevertap-consumer produce` against the real broker of the test bed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from confluent_kafka import Message

from consumer.cli import main
from consumer.codec import Decoder, Registry, to_message
from consumer.sample import sample_events
from tests.support.kafka import KafkaBed
from tests.support.schema_registry import running_registry

pytestmark = pytest.mark.kafka

# Never let the developer's own environment steer these runs.
CLEAN_ENV: Mapping[str, str | None] = {
    "KAFKA_BOOTSTRAP_SERVERS": None,
    "SCHEMA_REGISTRY_URL": None,
    "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": None,
    "KAFKA_EXTRA_CONFIG": None,
    "KAFKA_SECURITY_PROTOCOL": None,
}


def write_lines(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def produce(
    args: list[str], env: Mapping[str, str | None] | None = None, stdin: bytes | None = None
) -> Result:
    runner = CliRunner(env={**CLEAN_ENV, **(env or {})})
    return runner.invoke(main, ["produce", *args], input=stdin, catch_exceptions=False)


def header(message: Message, name: str) -> bytes | None:
    headers = message.headers() or []
    assert isinstance(headers, list)  # a consumed record's headers are a list of pairs
    for key, data in headers:
        if key == name:
            assert isinstance(data, bytes)
            return data
    return None


def partition(message: Message) -> int:
    number = message.partition()
    assert number is not None
    return number


def offset(message: Message) -> int:
    number = message.offset()
    assert number is not None
    return number


def value(message: Message) -> bytes:
    data = message.value()
    assert isinstance(data, bytes)
    return data


def test_every_line_lands_decodable_keyed_by_user_in_order(
    kafka: KafkaBed, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=3)
    events = list(sample_events(300, seed=21, destinations=["d-a", "d-b"]))
    assert any(isinstance(e.get("userId"), int) for e in events)  # numeric ids are in the mix
    result = produce(
        [
            "--topic",
            topic,
            str(write_lines(tmp_path / "in.jsonl", events)),
            "--bootstrap-servers",
            kafka.bootstrap,
        ]
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == f"produced 300, failed 0, invalid 0 → {topic}"
    records = kafka.consume_all(topic, 300)
    assert len(records) == 300
    assert sum(kafka.end_offsets(topic).values()) == 300

    decoder = Decoder()
    by_id = {e["messageId"]: e for e in events}
    position = {e["messageId"]: i for i, e in enumerate(events)}
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    order: dict[int, list[str]] = defaultdict(list)
    for record in sorted(records, key=lambda m: (partition(m), offset(m))):
        message = to_message(decoder.decode(value(record)))
        event = by_id[message["messageId"]]
        assert orjson.dumps(message, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            event, option=orjson.OPT_SORT_KEYS
        )
        user = event.get("userId", event["anonymousId"])
        assert record.key() == (user.encode() if isinstance(user, str) else str(user).encode())
        assert header(record, "destinationId") == event["destinationId"].encode()
        partitions_of_key[record.key() or b""].add(partition(record))
        order[partition(record)].append(event["messageId"])
    assert all(len(p) == 1 for p in partitions_of_key.values())  # one user, one partition
    for ids in order.values():  # within a partition, input order
        assert [position[i] for i in ids] == sorted(position[i] for i in ids)


def test_invalid_lines_are_reported_by_number_and_skipped(
    kafka: KafkaBed, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic()
    good = [
        {"type": "track", "event": "A", "userId": 7},
        {"type": "page", "anonymousId": "x"},
        {"type": "alias"},
    ]
    lines = [
        orjson.dumps(good[0]),
        b'{"type": "track", oops}',
        orjson.dumps(good[1]),
        b"[1, 2, 3]",
        b"",
        orjson.dumps(good[2]),
        b'{"userId": 1',
    ]
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    result = produce(["-t", topic, str(source), "--bootstrap-servers", kafka.bootstrap])

    assert result.exit_code == 1
    assert (
        result.stdout.strip().splitlines()[-1] == f"produced 3, failed 0, invalid 3 (lines 2, 4, 7) → {topic}"
    )
    for number in (2, 4, 7):
        assert f"line {number}: " in result.stderr
    assert "oops" not in result.stderr  # the payload is not echoed
    records = kafka.consume_all(topic, 3)
    assert [to_message(Decoder().decode(r.value())) for r in records] == good
    assert [r.key() for r in records] == [b"7", b"x", None]
    assert [header(r, "destinationId") for r in records] == [None, None, None]


def test_registry_mode_frames_records_with_the_registered_id(
    kafka: KafkaBed, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    events = list(sample_events(40, seed=5))
    with running_registry() as registry:
        registry.register("unrelated-value", '{"type": "string"}')
        result = produce(
            ["--topic", topic, str(write_lines(tmp_path / "in.jsonl", events))],
            env={"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "SCHEMA_REGISTRY_URL": registry.url},
        )
        assert result.exit_code == 0, result.output
        assert registry.subjects[f"{topic}-value"] == [2]
        records = kafka.consume_all(topic, 40)
        assert {value(r)[:5] for r in records} == {b"\x00\x00\x00\x00\x02"}
        decoder = Decoder(Registry.connect(registry.url))
        decoded = sorted(
            (to_message(decoder.decode(r.value())) for r in records), key=lambda m: m["messageId"]
        )
    assert decoded == sorted(events, key=lambda e: e["messageId"])


def test_key_field_partition_and_rate_options(kafka: KafkaBed, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=3)
    events = [
        {"type": "track", "event": "E", "userId": f"u{i}", "context": {"tenant": f"t{i % 2}"}, "session": i}
        for i in range(20)
    ]
    stdin = b"".join(orjson.dumps(e) + b"\n" for e in events)
    started = time.monotonic()
    result = produce(
        ["-t", topic, "--key-field", "session", "--key-field", "userId", "--partition", "2", "--rate", "100"],
        env={"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap},
        stdin=stdin,
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert elapsed >= 0.19  # 20 events at 100/s cannot be faster than 0.19 s
    records = sorted(kafka.consume_all(topic, 20), key=offset)
    assert {r.partition() for r in records} == {2}
    assert [r.key() for r in records] == [str(i).encode() for i in range(20)]


def test_undeliverable_events_count_as_failed(kafka: KafkaBed, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=1)
    stdin = b'{"type": "track", "userId": "u"}\n' * 3
    result = produce(
        ["-t", topic, "--partition", "5", "--delivery-timeout", "5", "--bootstrap-servers", kafka.bootstrap],
        stdin=stdin,
    )
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines()[-1] == f"produced 0, failed 3, invalid 0 → {topic}"
    assert "not produced" in result.stderr


def test_missing_bootstrap_servers_is_a_settings_error() -> None:
    result = produce(["-t", "anything"], stdin=b"{}\n")
    assert result.exit_code == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stderr


def test_registry_credentials_never_reach_the_output(kafka: KafkaBed, new_topic: Callable[..., str]) -> None:
    topic = new_topic()
    with running_registry(user_info="writer:correct-horse") as registry:
        result = produce(
            ["-t", topic, "--bootstrap-servers", kafka.bootstrap],
            env={
                "SCHEMA_REGISTRY_URL": registry.url,
                "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "writer:battery-staple",
            },
            stdin=b"{}\n",
        )
    assert result.exit_code == 2
    assert "HTTP 401" in result.stderr
    assert "battery-staple" not in result.output + result.stderr


def test_sample_events_piped_into_produce_as_processes(
    kafka: KafkaBed, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=2)
    command = [sys.executable, "-m", "consumer"]
    sample = subprocess.run(
        [*command, "sample-events", "150", "--seed", "8"], capture_output=True, check=True
    )
    env = {"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap}
    produced = subprocess.run(
        [*command, "produce", "--topic", topic],
        input=sample.stdout,
        capture_output=True,
        env=env,
        check=False,
    )
    assert produced.returncode == 0, produced.stderr.decode()
    assert produced.stdout.decode().strip() == f"produced 150, failed 0, invalid 0 → {topic}"
    decoded = [to_message(Decoder().decode(r.value())) for r in kafka.consume_all(topic, 150)]
    expected = [orjson.loads(line) for line in sample.stdout.splitlines()]
    assert sorted(decoded, key=lambda m: m["messageId"]) == sorted(expected, key=lambda m: m["messageId"])


def test_ctrl_c_reports_what_was_produced(kafka: KafkaBed, new_topic: Callable[..., str]) -> None:
    topic = new_topic()
    env = {"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap}
    process = subprocess.Popen(
        [sys.executable, "-m", "consumer", "produce", "--topic", topic],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdin is not None
        process.stdin.write(b'{"type": "track", "userId": "u"}\n' * 10)
        process.stdin.flush()  # and keep stdin open: the command waits for more
        deadline = time.monotonic() + 60
        while sum(kafka.end_offsets(topic).values()) < 10 and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, stderr.decode()
    assert "interrupted" in stderr.decode()
    assert stdout.decode().strip() == f"produced 10, failed 0, invalid 0 → {topic}"

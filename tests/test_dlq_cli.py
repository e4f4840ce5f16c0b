"""`clevertap-consumer dlq inspect|redrive` against the real broker.

The DLQ is written by the service's own writer (`consumer.dlq.DeadLetters`), so these tests read
exactly what the service leaves behind: eight dead letters from two live source topics, one
deleted topic and one unknown source, across every stage.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from confluent_kafka import Message, Producer

from consumer.cli import main
from consumer.codec import Encoder
from consumer.contracts import Failure
from consumer.dlq import DeadLetters
from consumer.dlq_admin import DlqReader, consumer_config
from consumer.offsets import Entry
from consumer.settings import ClientSettings
from consumer.source import message_headers
from tests.support.kafka import KafkaBed

pytestmark = pytest.mark.kafka

# Never let the developer's own environment steer these runs.
CLEAN_ENV: Mapping[str, str | None] = {
    "KAFKA_BOOTSTRAP_SERVERS": None,
    "KAFKA_EXTRA_CONFIG": None,
    "KAFKA_SECURITY_PROTOCOL": None,
    "KAFKA_SASL_PASSWORD": None,
    "SCHEMA_REGISTRY_URL": None,
    "DLQ_TOPIC": None,
    "COLUMNS": None,
}

MINUTE = 60_000


def event(n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"u-{n}",
        "messageId": f"m-{n}",
        "properties": {"revenue": n + 0.5, "items": [{"sku": "s-1"}]},
        "destinationId": "dest-1",
    }


@dataclass(frozen=True)
class Letter:
    """One dead letter the bed writes; `source_offset` (unique) names it in assertions."""

    source_offset: int
    topic: str  # "a", "b", "gone" (never created), "" (no source topic)
    partition: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes | None]]
    destination: str | None
    failure: Failure
    minutes: int  # record timestamp = base + minutes


ENCODER = Encoder()
LETTERS = [
    Letter(10, "a", 0, b"u-10", b"\x00\x01not avro", [], None, Failure("decode", "avro_error", "bad body"), 0),
    Letter(
        11, "a", 1, b"u-11", ENCODER.encode(event(11)), [("destinationId", b"dest-x")], "dest-x",
        Failure("route", "unknown_destination", "destinationId 'dest-x' is not configured"), 1,
    ),
    Letter(
        12, "b", 0, b"u-12", ENCODER.encode(event(12)), [], "dest-1",
        Failure("transform", "missing_identity", "no userId"), 2,
    ),
    Letter(
        13, "a", 1, b"u-13", ENCODER.encode(event(13)), [("trace", b"t-13"), ("empty", None)], "dest-1",
        Failure("deliver", "clevertap_rejected", "Phone invalid", 516), 3,
    ),
    Letter(
        14, "b", 0, None, ENCODER.encode(event(14)), [], "dest-2",
        Failure("deliver", "clevertap_rejected", "Phone invalid", 516), 4,
    ),
    Letter(
        15, "a", 0, b"u-15", ENCODER.encode(event(15)), [("redrive.from", b"old-dlq/0/3")], "dest-2",
        Failure("deliver", "retries_exhausted", "503 for 300 s"), 5,
    ),
    Letter(
        16, "gone", 0, b"u-16", ENCODER.encode(event(16)), [], "dest-x",
        Failure("route", "unknown_destination", "destinationId 'dest-x' is not configured"), 6,
    ),
    Letter(
        17, "", 0, b"u-17", ENCODER.encode(event(17)), [], None,
        Failure("route", "unknown_destination", "no destinationId"), 7,
    ),
]  # fmt: skip
BY_OFFSET = {letter.source_offset: letter for letter in LETTERS}
ALL = set(BY_OFFSET)


@dataclass
class Bed:
    kafka: KafkaBed
    dlq: str
    topics: dict[str, str]  # "a"/"b"/"gone"/"" → real topic name ("gone" is never created)
    base_ms: int

    def run(self, *args: str, env: Mapping[str, str | None] | None = None) -> Result:
        runner = CliRunner(env={**CLEAN_ENV, "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap, **(env or {})})
        return runner.invoke(main, ["dlq", *args], catch_exceptions=False)

    def inspect_json(self, *args: str) -> list[dict[str, Any]]:
        result = self.run("inspect", "--topic", self.dlq, "--format", "json", *args)
        assert result.exit_code == 0, result.output
        return [orjson.loads(line) for line in result.stdout.splitlines()]

    def ts(self, letter: Letter) -> int:
        return self.base_ms + letter.minutes * MINUTE

    def dlq_record(self, source_offset: int) -> Message:
        for msg in self.kafka.consume_all(self.dlq, len(LETTERS)):
            if dict(message_headers(msg))["dlq.source.offset"] == str(source_offset).encode():
                return msg
        raise AssertionError(f"no DLQ record for source offset {source_offset}")

    def published(self, topic: str) -> int:
        return sum(self.kafka.end_offsets(topic).values())


def write_letters(
    kafka: KafkaBed, dlq: str, letters: list[Letter], topics: dict[str, str], base: int
) -> None:
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "acks": "all", "enable.idempotence": True})
    written: list[Entry] = []
    writer = DeadLetters(producer, dlq, "the-group", written.append)
    for letter in letters:
        entry = Entry(
            topics[letter.topic],
            letter.partition,
            letter.source_offset,
            letter.key,
            letter.value,
            list(letter.headers),
            base + letter.minutes * MINUTE,
            destination_id=letter.destination,
        )
        entry.fail(letter.failure)
        writer.send(entry, letter.failure)
    assert writer.flush(30) == 0
    assert len(written) == len(letters)


@pytest.fixture
def bed(kafka: KafkaBed, new_topic: Callable[..., str]) -> Bed:
    dlq = new_topic(partitions=2, suffix="-dlq")
    topics = {
        "a": new_topic(partitions=2, suffix="-a"),
        "b": new_topic(partitions=1, suffix="-b"),
        "gone": f"gone-{dlq}",
        "": "",
    }
    # Two hours ago, on a whole second: far from "now" so no filter boundary depends on the clock.
    base = (int(time.time()) - 7200) * 1000
    write_letters(kafka, dlq, LETTERS, topics, base)
    return Bed(kafka, dlq, topics, base)


def table_rows(output: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines() if "│" in line]


# --- inspect ------------------------------------------------------------------------------------


def test_inspect_counts_by_stage_reason_code_destination_and_source(bed: Bed) -> None:
    result = bed.run("inspect", "--topic", bed.dlq)
    assert result.exit_code == 0, result.output
    assert f"{bed.dlq}: 8 of 8 records read match" in result.stdout
    a, b = bed.topics["a"], bed.topics["b"]
    rows = {tuple(row[:5]): int(row[5]) for row in table_rows(result.stdout)}
    assert rows == {
        ("decode", "avro_error", "", "", a): 1,
        ("route", "unknown_destination", "", "dest-x", a): 1,
        ("route", "unknown_destination", "", "dest-x", bed.topics["gone"]): 1,
        ("route", "unknown_destination", "", "", ""): 1,
        ("transform", "missing_identity", "", "dest-1", b): 1,
        ("deliver", "clevertap_rejected", "516", "dest-1", a): 1,
        ("deliver", "clevertap_rejected", "516", "dest-2", b): 1,
        ("deliver", "retries_exhausted", "", "dest-2", a): 1,
    }


def test_inspect_reads_without_joining_or_committing(bed: Bed) -> None:
    assert bed.run("inspect", "--topic", bed.dlq).exit_code == 0
    assert bed.kafka.committed("clevertap-consumer-dlq-tools", bed.dlq) == {}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([], ALL),
        (["--stage", "deliver"], {13, 14, 15}),
        (["--stage", "route", "--stage", "transform"], {11, 12, 16, 17}),
        (["--reason", "clevertap_rejected"], {13, 14}),
        (["--reason", "avro_error", "--reason", "missing_identity"], {10, 12}),
        (["--destination", "dest-2"], {14, 15}),
        (["--stage", "deliver", "--destination", "dest-1"], {13}),
        (["--since", "+3"], {13, 14, 15, 16, 17}),
        (["--until", "+3"], {10, 11, 12}),
        (["--since", "+1", "--until", "+4"], {11, 12, 13}),
        (["--since", "iso+6"], {16, 17}),
        (["--reason", "unknown_destination", "--since", "+2"], {16, 17}),
        (["--since", "+8"], set()),
    ],
)
def test_inspect_filters(bed: Bed, filters: list[str], expected: set[int]) -> None:
    def resolve(arg: str) -> str:
        """`+N` is the bed's base plus N minutes, in epoch ms; `iso+N` the same in ISO-8601."""
        if arg.startswith("+"):
            return str(bed.base_ms + int(arg[1:]) * MINUTE)
        if arg.startswith("iso+"):
            moment = datetime.fromtimestamp((bed.base_ms + int(arg[4:]) * MINUTE) / 1000, UTC)
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        return arg

    records = bed.inspect_json(*map(resolve, filters))
    assert {int(r["dlq"]["source.offset"]) for r in records} == expected
    assert len(records) == len(expected)


def test_inspect_limit_stops_after_n_matches(bed: Bed) -> None:
    assert len(bed.inspect_json("--limit", "3")) == 3
    result = bed.run("inspect", "--topic", bed.dlq, "--stage", "deliver", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert "2 of" in result.stdout
    assert "stopped at --limit 2" in result.stdout


def test_inspect_json_carries_every_header_and_the_original_record(bed: Bed) -> None:
    (record,) = bed.inspect_json("--reason", "clevertap_rejected", "--destination", "dest-1")
    dlq_msg = bed.dlq_record(13)
    letter = BY_OFFSET[13]
    assert record["topic"] == bed.dlq
    assert (record["partition"], record["offset"]) == (dlq_msg.partition(), dlq_msg.offset())
    assert record["timestamp"] == bed.ts(letter)
    assert record["key"] == "u-13"
    assert record["value_bytes"] == len(letter.value)
    assert record["headers"] == [["trace", "t-13"], ["empty", None]]
    dlq = record["dlq"]
    assert int(dlq.pop("timestamp")) > bed.base_ms
    assert dlq == {
        "stage": "deliver",
        "reason": "clevertap_rejected",
        "message": "Phone invalid",
        "clevertap.code": "516",
        "source.topic": bed.topics["a"],
        "source.partition": "1",
        "source.offset": "13",
        "destination.id": "dest-1",
        "consumer.group": "the-group",
    }
    assert "event" not in record, "decoding is asked for, not done by default"


def test_inspect_shows_binary_bytes_as_base64(
    bed: Bed, kafka: KafkaBed, new_topic: Callable[..., str]
) -> None:
    dlq = new_topic()
    letter = Letter(
        1, "a", 0, b"\xff\xfe", b"v", [("bin", b"\x80")], None, Failure("decode", "avro_error", "x"), 0
    )
    write_letters(kafka, dlq, [letter], bed.topics, bed.base_ms)
    (record,) = bed.run("inspect", "--topic", dlq, "--format", "json").stdout.splitlines()
    parsed = orjson.loads(record)
    assert parsed["key"] == {"base64": "//4="}
    assert parsed["headers"] == [["bin", {"base64": "gA=="}]]


def test_inspect_decode_shows_the_event_or_why_not(bed: Bed) -> None:
    records = {
        int(r["dlq"]["source.offset"]): r
        for r in bed.inspect_json("--decode", "--stage", "decode", "--stage", "route")
    }
    assert records[11]["event"] == event(11)
    assert "undecodable" not in records[11]
    assert records[10]["event"] is None
    assert records[10]["undecodable"]["reason"] == "avro_error"
    assert "does not decode" in records[10]["undecodable"]["message"]


def test_inspect_is_bounded_by_the_end_it_saw_at_start(bed: Bed, kafka: KafkaBed) -> None:
    settings = ClientSettings(kafka_bootstrap_servers=kafka.bootstrap)
    reader = DlqReader(consumer_config(settings), bed.dlq)
    try:
        windows = reader.plan()
        write_letters(kafka, bed.dlq, LETTERS[:2], bed.topics, bed.base_ms)  # arrive after the start
        assert len(list(reader.read(windows))) == len(LETTERS)
        assert len(list(reader.read(reader.plan()))) == len(LETTERS) + 2
    finally:
        reader.close()


def test_inspect_of_an_empty_dlq_returns_at_once(bed: Bed, new_topic: Callable[..., str]) -> None:
    empty = new_topic(partitions=3)
    result = bed.run("inspect", "--topic", empty)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{empty}: 0 of 0 records read match\n"


def test_dlq_topic_defaults_to_the_service_setting(bed: Bed) -> None:
    result = bed.run("inspect", "--format", "json", env={"DLQ_TOPIC": bed.dlq})
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == len(LETTERS)
    result = bed.run("inspect")  # nothing set: the service's default name, which this broker lacks
    assert result.exit_code == 2
    assert "'clevertap-consumer-dlq' does not exist" in result.output


# --- redrive ------------------------------------------------------------------------------------


def consume(bed: Bed, topic: str, expected: int) -> dict[int, Message]:
    """The records of `topic` by the source offset of the letter they came from."""
    out: dict[int, Message] = {}
    for msg in bed.kafka.consume_all(topic, expected):
        for offset, letter in BY_OFFSET.items():
            if msg.value() == letter.value:
                out[offset] = msg
    assert len(out) == expected
    return out


def assert_redriven(bed: Bed, msg: Message, source_offset: int) -> None:
    """The original record again, clean of dlq.* headers, naming the DLQ record it came from."""
    letter = BY_OFFSET[source_offset]
    dlq_msg = bed.dlq_record(source_offset)
    assert msg.key() == letter.key
    assert msg.value() == letter.value
    assert msg.timestamp()[1] == bed.ts(letter)
    originals = [(k, v) for k, v in letter.headers if k != "redrive.from"]
    ref = f"{bed.dlq}/{dlq_msg.partition()}/{dlq_msg.offset()}".encode()
    assert message_headers(msg) == [*originals, ("redrive.from", ref)]


def test_redrive_publishes_exactly_the_filtered_records(bed: Bed) -> None:
    result = bed.run("redrive", "--topic", bed.dlq, "--reason", "clevertap_rejected")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "redriven 2, skipped by filter 6, unroutable 0, failed 0"
    a, b = bed.topics["a"], bed.topics["b"]
    assert bed.published(a) == 1
    assert bed.published(b) == 1
    (from_a,) = consume(bed, a, 1).items()
    assert from_a[0] == 13
    assert from_a[1].partition() == 1, "back to its original partition"
    assert_redriven(bed, from_a[1], 13)
    assert_redriven(bed, consume(bed, b, 1)[14], 14)


def test_redrive_skips_and_reports_records_without_a_source_topic(bed: Bed) -> None:
    result = bed.run("redrive", "--topic", bed.dlq)
    assert result.exit_code == 1, "a selected record was left behind"
    assert result.stdout.splitlines()[-1] == "redriven 6, skipped by filter 0, unroutable 2, failed 0"
    assert "no dlq.source.topic header (use --to)" in result.stderr
    assert f"source topic '{bed.topics['gone']}' does not exist" in result.stderr
    assert bed.topics["gone"] not in bed.kafka.admin.list_topics(timeout=10).topics, "never auto-created"
    records = consume(bed, bed.topics["a"], 4)
    records.update(consume(bed, bed.topics["b"], 2))
    assert set(records) == {10, 11, 12, 13, 14, 15}
    for offset, msg in records.items():
        assert msg.partition() == BY_OFFSET[offset].partition
        assert_redriven(bed, msg, offset)  # 15's earlier redrive.from is replaced, not stacked


def test_redrive_to_overrides_the_source_topic(bed: Bed, new_topic: Callable[..., str]) -> None:
    target = new_topic(partitions=3, suffix="-to")
    result = bed.run("redrive", "--topic", bed.dlq, "--reason", "unknown_destination", "--to", target)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "redriven 3, skipped by filter 5, unroutable 0, failed 0"
    records = consume(bed, target, 3)
    assert set(records) == {11, 16, 17}
    for offset, msg in records.items():
        assert_redriven(bed, msg, offset)
    assert bed.published(bed.topics["a"]) == 0


def test_dry_run_publishes_nothing(bed: Bed) -> None:
    result = bed.run("redrive", "--topic", bed.dlq, "--stage", "deliver", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "would redrive 3, skipped by filter 5, unroutable 0"
    rows = {tuple(row[:3]): int(row[3]) for row in table_rows(result.stdout)}
    assert rows == {
        (bed.topics["a"], "deliver", "clevertap_rejected"): 1,
        (bed.topics["a"], "deliver", "retries_exhausted"): 1,
        (bed.topics["b"], "deliver", "clevertap_rejected"): 1,
    }
    assert bed.published(bed.topics["a"]) == 0
    assert bed.published(bed.topics["b"]) == 0


@pytest.mark.parametrize(("answer", "published"), [("y", 2), ("n", 0)])
def test_redrive_asks_on_a_terminal(bed: Bed, answer: str, published: int) -> None:
    controller, terminal = pty.openpty()
    os.write(controller, f"{answer}\n".encode())  # typed ahead: the terminal keeps it for the prompt
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env["KAFKA_BOOTSTRAP_SERVERS"] = bed.kafka.bootstrap
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "consumer",
                "dlq",
                "redrive",
                "--topic",
                bed.dlq,
                "--reason",
                "clevertap_rejected",
            ],
            stdin=terminal,
            capture_output=True,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    stderr = proc.stderr.decode()
    a, b = bed.topics["a"], bed.topics["b"]
    assert f"Redrive 2 records from {bed.dlq} ({a}: 1, {b}: 1)?" in stderr
    assert bed.published(a) + bed.published(b) == published
    if published:
        assert proc.returncode == 0, stderr
        assert proc.stdout.decode().splitlines()[-1].startswith("redriven 2,")
    else:
        assert proc.returncode == 1
        assert "Aborted" in stderr


# --- bad input ----------------------------------------------------------------------------------

SECRET = "pa55-marker-do-not-print"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        pytest.param(["inspect", "--topic", "no-such-dlq"], "'--topic'", id="inspect-unknown-topic"),
        pytest.param(["redrive", "--topic", "no-such-dlq"], "'--topic'", id="redrive-unknown-topic"),
        pytest.param(["inspect", "--since", "yesterday"], "'--since'", id="bad-since"),
        pytest.param(["redrive", "--until", "2024-13-01"], "'--until'", id="bad-until"),
        pytest.param(["inspect", "--since", "2h", "--until", "3h"], "'--until'", id="until-before-since"),
        pytest.param(["inspect", "--stage", "bogus"], "'--stage'", id="unknown-stage"),
        pytest.param(["inspect", "--decode"], "--format json", id="decode-needs-json"),
        pytest.param(["redrive", "--to", "no-such-topic"], "'--to'", id="unknown-to"),
        pytest.param(["redrive", "--to", "DLQ"], "'--to'", id="to-the-dlq"),
    ],
)
def test_bad_input_names_the_option_and_exits_2(bed: Bed, args: list[str], option: str) -> None:
    args = [bed.dlq if a == "DLQ" else a for a in args]
    if "--topic" not in args:
        args += ["--topic", bed.dlq]
    result = bed.run(*args, env={"KAFKA_SASL_PASSWORD": SECRET, "KAFKA_SASL_USERNAME": "ops"})
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert SECRET not in result.output
    assert bed.published(bed.topics["a"]) == 0


def test_missing_settings_name_the_variable(bed: Bed) -> None:
    result = bed.run("inspect", env={"KAFKA_BOOTSTRAP_SERVERS": None})
    assert result.exit_code == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.output


def test_the_secret_never_reaches_the_output(bed: Bed) -> None:
    env = {"KAFKA_SASL_PASSWORD": SECRET, "KAFKA_SASL_USERNAME": "ops"}
    for args in (["inspect"], ["inspect", "--format", "json", "--decode"], ["redrive", "--dry-run"]):
        result = bed.run(*args, "--topic", bed.dlq, env=env)
        assert result.exit_code in (0, 1), result.output
        assert SECRET not in result.output


def test_records_the_broker_refuses_count_as_failed(bed: Bed, kafka: KafkaBed) -> None:
    tiny = kafka.create_topic(f"tiny-{bed.dlq}", config={"max.message.bytes": "64"})
    result = bed.run("redrive", "--topic", bed.dlq, "--stage", "deliver", "--to", tiny)
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[-1] == "redriven 0, skipped by filter 5, unroutable 0, failed 3"
    assert "records not redriven" in result.stderr
    assert bed.published(tiny) == 0

"""Log output as operators and log pipelines see it: JSON lines, console lines, no secrets."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer

from consumer import logs
from consumer.health import Health, serve
from consumer.settings import load_settings
from tests.support.kafka import KafkaBed

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back for the next test."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    levels = {n: logging.getLogger(n).level for n in ("httpx", "httpcore")}
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(False)


def _secret(prefix: str = "s3cr3t") -> str:
    value = f"{prefix}-{uuid.uuid4().hex}"
    logs.register_secret(value)
    return value


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_lines_carry_timestamp_level_logger_message_and_extras() -> None:
    out = io.StringIO()
    logs.configure_logging("INFO", "json", stream=out)
    log = logging.getLogger("consumer.deliver")
    log.debug("not at INFO")
    log.warning(
        "batch rejected: %d records",
        12,
        extra={"stage": "deliver", "topic": "events", "partition": 3, "offset": 42, "account": "ACC-1"},
    )
    (line,) = _json_lines(out.getvalue())
    assert RFC3339_UTC.match(line["timestamp"]), line["timestamp"]
    assert abs(datetime.fromisoformat(line["timestamp"]).timestamp() - time.time()) < 60
    assert line["level"] == "WARNING"
    assert line["logger"] == "consumer.deliver"
    assert line["message"] == "batch rejected: 12 records"
    assert {k: line[k] for k in ("stage", "topic", "partition", "offset", "account")} == {
        "stage": "deliver",
        "topic": "events",
        "partition": 3,
        "offset": 42,
        "account": "ACC-1",
    }


def test_exceptions_are_one_json_line_with_the_traceback() -> None:
    out = io.StringIO()
    logs.configure_logging("INFO", "json", stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("consumer.pipeline").exception("loop failed")
    (line,) = _json_lines(out.getvalue())
    assert line["message"] == "loop failed"
    assert "Traceback" in line["exception"]
    assert "ValueError: boom" in line["exception"]


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_registered_secrets_never_reach_the_output(fmt: logs.LogFormat) -> None:
    secret = _secret()
    out = io.StringIO()
    logs.configure_logging("DEBUG", fmt, stream=out)
    log = logging.getLogger("consumer.test")
    log.info(f"in the message {secret}")
    log.info("in the args %s and %r", secret, {"passcode": secret})
    log.info(
        "in extras",
        extra={
            "plain": secret,
            "nested": {"headers": {"X-CleverTap-Passcode": secret}, "list": [secret, 1]},
            "raw": secret.encode(),
            f"key-{secret}": "secret as a key",
        },
    )
    try:
        raise RuntimeError(f"upstream said {secret}")
    except RuntimeError:
        log.exception("with an exception")
    log.info("with a stack", stack_info=True, extra={"why": secret})

    text = out.getvalue()
    assert secret not in text
    assert secret[: len(secret) // 2] + "\n" not in text
    assert text.count(logs.REDACTED) >= 8
    if fmt == "json":
        lines = _json_lines(text)
        assert len(lines) == 5
        assert lines[2]["nested"] == {"headers": {"X-CleverTap-Passcode": "***"}, "list": ["***", 1]}
        assert lines[2]["raw"] == "***"
        assert "RuntimeError: upstream said ***" in lines[3]["exception"]
        assert "stack" in lines[4]


def test_secrets_with_json_escaped_characters_are_redacted_in_the_final_line() -> None:
    secret = f'pa"ss\\wörd-{uuid.uuid4().hex[:8]}'
    logs.register_secret(secret)
    # The formatter alone, without the filter: its final pass has to catch the escaped form.
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "plain", None, None)
    record.detail = secret
    line = logs.JsonFormatter().format(record)
    assert json.loads(line)["detail"] == "***"
    assert json.dumps(secret)[1:-1] not in line


def test_settings_secrets_are_registered_with_their_derived_forms(tmp_path: Path) -> None:
    sasl = f"sasl-{uuid.uuid4().hex}"
    sr_password = f"srpw-{uuid.uuid4().hex}"
    settings = load_settings(
        kafka_bootstrap_servers="127.0.0.1:9092",
        kafka_topics="events",
        destinations_file=tmp_path / "destinations.yaml",
        kafka_sasl_password=sasl,
        schema_registry_basic_auth_user_info=f"svc:{sr_password}",
    )
    logs.register_settings_secrets(settings)
    basic = base64.b64encode(f"svc:{sr_password}".encode()).decode()
    text = logs.redact(f"sasl={sasl} pw={sr_password} header=Basic {basic}")
    assert text == "sasl=*** pw=*** header=Basic ***"


def test_console_lines_are_readable() -> None:
    out = io.StringIO()
    logs.configure_logging("INFO", "console", stream=out)
    logging.getLogger("consumer.source").info(
        "partitions assigned", extra={"topic": "events", "partition": 3, "note": "two words"}
    )
    line = out.getvalue().rstrip("\n")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO    consumer\.source: partitions assigned"
        r'  topic=events partition=3 note="two words"',
        line,
    ), line


def test_auto_picks_console_on_a_terminal_and_json_elsewhere() -> None:
    pipe = io.StringIO()
    logs.configure_logging("INFO", "auto", stream=pipe)
    logging.getLogger("consumer.x").info("to a pipe")
    assert json.loads(pipe.getvalue())["message"] == "to a pipe"

    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as tty, os.fdopen(leader, "rb", buffering=0) as reader:
        logs.configure_logging("INFO", "auto", stream=tty)
        logging.getLogger("consumer.x").info("to a terminal")
        tty.flush()
        shown = reader.read(4096).decode()
    assert "INFO    consumer.x: to a terminal" in shown
    assert not shown.lstrip().startswith("{")


def test_configure_twice_replaces_the_handler_instead_of_duplicating_lines() -> None:
    out = io.StringIO()
    logs.configure_logging("INFO", "json", stream=io.StringIO())
    logs.configure_logging("INFO", "json", stream=out)
    logging.getLogger("consumer.x").info("once")
    assert len(_json_lines(out.getvalue())) == 1
    with pytest.raises(ValueError, match="unknown log level"):
        logs.configure_logging("LOUD", "json", stream=out)


def test_a_broken_format_string_is_logged_not_raised() -> None:
    _secret()  # redaction active
    out = io.StringIO()
    logs.configure_logging("INFO", "json", stream=out)
    logging.getLogger("consumer.x").info("count %d", "not a number")
    (line,) = _json_lines(out.getvalue())
    assert "count %d" in line["message"]


def test_httpx_lines_go_through_the_same_handler_and_per_request_lines_need_debug() -> None:
    secret = _secret("token")
    srv = serve(Health(publish=False), "127.0.0.1", 0)
    try:
        quiet = io.StringIO()
        logs.configure_logging("INFO", "json", stream=quiet)
        httpx.get(f"{srv.url}/healthz?token={secret}", timeout=5.0)
        assert not [line for line in _json_lines(quiet.getvalue()) if line["logger"] == "httpx"]

        loud = io.StringIO()
        logs.configure_logging("DEBUG", "json", stream=loud)
        httpx.get(f"{srv.url}/healthz?token={secret}", timeout=5.0)
    finally:
        srv.close()
    text = loud.getvalue()
    assert secret not in text
    requests = [line for line in _json_lines(text) if line["logger"] == "httpx"]
    assert requests, text
    assert "token=***" in requests[0]["message"]


@pytest.mark.kafka
def test_librdkafka_lines_come_out_in_our_format_redacted(
    kafka: KafkaBed, new_topic: Callable[..., str]
) -> None:
    secret = _secret("group")
    topic = new_topic()
    out = io.StringIO()
    logs.configure_logging("DEBUG", "json", stream=out)
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap,
            "group.id": f"g-{secret}",  # librdkafka's cgrp debug lines name the group
            "debug": "cgrp",
            "logger": logs.kafka_logger(),
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while not consumer.assignment():
            assert time.monotonic() < deadline, "no assignment"
            consumer.poll(0.1)
    finally:
        consumer.close()
    text = out.getvalue()
    assert secret not in text
    lines = [line for line in _json_lines(text) if line["logger"] == logs.KAFKA_LOGGER]
    assert lines, "no librdkafka log lines arrived"
    assert all(RFC3339_UTC.match(line["timestamp"]) for line in lines)
    assert any("g-***" in line["message"] for line in lines)


def test_short_exception_text_is_redacted() -> None:
    secret = _secret()
    assert (
        logs.format_exception_short(PermissionError(f"denied for {secret}"))
        == "PermissionError: denied for ***"
    )


def test_warnings_are_captured_into_the_log() -> None:
    out = io.StringIO()
    logs.configure_logging("INFO", "json", stream=out)
    warnings.warn("deprecated knob", UserWarning, stacklevel=1)
    lines = _json_lines(out.getvalue())
    assert any(line["logger"] == "py.warnings" and "deprecated knob" in line["message"] for line in lines)

"""Logging: one JSON object per line for machines, a readable line for people, no secrets ever.

Format. `LOG_FORMAT=json` writes one JSON object per line to stderr with `timestamp` (RFC 3339,
UTC, milliseconds), `level`, `logger`, `message`, then any `extra=` fields, and `exception` /
`stack` when present. `console` writes `timestamp LEVEL logger: message key=value ...`. `auto`
picks console when stderr is a terminal and JSON otherwise (containers, CI).

Fields. Pass context as `extra=` with these names, so log queries work across stages:
`stage` (decode, route, transform, batch, deliver, dlq, commit, source), `topic`, `partition`,
`offset`, `destination` (destinationId), `account` (CleverTap account id), `batch_records`,
`status` (HTTP), `code` (CleverTap), `reason` (the metric/DLQ reason label).

Volume. Nothing is logged per Kafka record or per CleverTap record at INFO or above: at 50k
records/s that would be the bottleneck and would bury what matters. Per-record detail belongs
to DEBUG, counts belong to metrics, and failures are logged once per batch or per DLQ write,
with the reason and the counts. httpx logs every request at INFO, so it is held at WARNING
unless LOG_LEVEL=DEBUG.

Secrets. Values registered with `register_secret()` (passcodes, the SASL password, Schema
Registry user info — `register_settings_secrets()` does the settings ones) are replaced by `***`
wherever they appear: message, %-args, `extra` fields (nested too), exception and stack text.
Redaction happens twice: a filter cleans the record before any formatter sees it, and the
formatters clean their final line again (catching JSON-escaped forms). Third-party log lines
(confluent-kafka via `kafka_logger()`, httpx, warnings) go through the same handler, so through
the same redaction.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, TextIO

from pydantic import BaseModel, SecretStr
from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

REDACTED: Final = "***"
#: librdkafka properties (KAFKA_EXTRA_CONFIG keys) whose values are credentials.
SECRET_PROPERTY: Final = re.compile(r"password|secret|jaas|\.pem$|token", re.IGNORECASE)
KAFKA_LOGGER: Final = "consumer.kafka"
LogFormat = Literal["json", "console", "auto"]
#: Set by the WORKERS supervisor in each child's environment: the child's index, which every
#: log line of the child carries as the field `worker` (consumer/workers.py).
WORKER_ENV: Final = "CLEVERTAP_CONSUMER_WORKER"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRS: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


class _Secrets:
    """The registered secret values and one regex that finds any of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if not value:
            return
        # The JSON-escaped form matters for the final pass over formatted JSON lines, where
        # quotes, backslashes and non-ASCII characters of a secret appear escaped.
        forms = {value, json.dumps(value)[1:-1]}
        with self._lock:
            if forms <= self._values:
                return
            self._values |= forms
            ordered = sorted(self._values, key=len, reverse=True)  # longest first: no partial leaks
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None:
            return text
        return pattern.sub(REDACTED, text)

    @property
    def active(self) -> bool:
        return self._pattern is not None

    def __len__(self) -> int:
        return len(self._values)


_secrets = _Secrets()


def register_secret(*values: str | SecretStr | None) -> None:
    """Make these values impossible to log. Call at start-up for every credential, before the
    first client is created (passcodes from the destinations file, SASL password, ...)."""
    for value in values:
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        if plain:
            _secrets.add(plain)


def register_settings_secrets(settings: BaseModel) -> None:
    """Register every `SecretStr` field of a settings model. A `user:password` value (Schema
    Registry basic auth) also registers its password alone and its Basic-auth base64 form."""
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, Mapping):  # KAFKA_EXTRA_CONFIG: sasl.password, ssl.key.password, ...
            register_secret(*(str(v) for k, v in value.items() if SECRET_PROPERTY.search(str(k))))
            continue
        if not isinstance(value, SecretStr):
            continue
        secret = value.get_secret_value()
        register_secret(secret)
        if ":" in secret:
            register_secret(secret.split(":", 1)[1], base64.b64encode(secret.encode()).decode())


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***`."""
    return _secrets.redact(text)


def _redact_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _secrets.redact(value)
    if isinstance(value, bytes | bytearray):
        return _secrets.redact(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {_secrets.redact(str(k)): _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    return _secrets.redact(str(value))


_TRACEBACK_FORMATTER = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Replaces registered secrets in a record before any formatter sees it.

    Attach it to handlers, not loggers: a logger's filters do not run for records propagated
    from child loggers (httpx, confluent-kafka), a handler's do. It renders the message (so the
    %-args are redacted as part of the final text), cleans `extra` fields recursively, and turns
    exception and stack information into redacted text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets.active or getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format must not turn a log call into a crash
            message = f"{record.msg!s} {record.args!r}"
        record.msg = _secrets.redact(message)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _RECORD_ATTRS:
                setattr(record, key, _redact_value(value))
        if record.exc_info:
            record.exc_text = _TRACEBACK_FORMATTER.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = _secrets.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = _secrets.redact(record.stack_info)
        setattr(record, "_redacted", True)  # noqa: B010 (LogRecord has no such slot)
        return True


def _rfc3339(created: float) -> str:
    return datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(_BaseJsonFormatter):
    """python-json-logger with the project's field names and a final redaction pass."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={
                "asctime": "timestamp",
                "levelname": "level",
                "name": "logger",
                "exc_info": "exception",
                "stack_info": "stack",
            },
            reserved_attrs=[*_RECORD_ATTRS, "_redacted"],
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return _rfc3339(record.created)

    def format(self, record: logging.LogRecord) -> str:
        return _secrets.redact(super().format(record))


class ConsoleFormatter(logging.Formatter):
    """`2026-01-02T03:04:05.678Z WARNING consumer.deliver: message  account=X status=429`."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        line = f"{_rfc3339(record.created)} {record.levelname:<7} {record.name}: {record.message}"
        extras = [
            f"{key}={_console_value(value)}"
            for key, value in vars(record).items()
            if key not in _RECORD_ATTRS and key != "_redacted"
        ]
        if extras:
            line += "  " + " ".join(extras)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return _secrets.redact(line)


def _console_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (not text or any(c.isspace() for c in text)) else text


class _WorkerFilter(logging.Filter):
    """Tags every line with the worker that wrote it (N children share the pod's stderr)."""

    def __init__(self, worker: str) -> None:
        super().__init__()
        self._worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "worker"):
            record.worker = self._worker
        return True


def configure_logging(
    level: str | int = "INFO", fmt: LogFormat = "auto", *, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record of the process (ours, confluent-kafka's, httpx's, warnings) through
    one handler on stderr with the chosen format and secret redaction. Idempotent."""
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    stream = stream if stream is not None else sys.stderr
    if fmt == "auto":
        isatty = getattr(stream, "isatty", None)
        fmt = "console" if callable(isatty) and isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    handler.addFilter(RedactingFilter())
    worker = os.environ.get(WORKER_ENV)
    if worker:
        handler.addFilter(_WorkerFilter(worker))

    # Replace every root handler, not only ours: a handler left by basicConfig or a library
    # would print lines in another format and without redaction.
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)

    debug = numeric <= logging.DEBUG
    logging.getLogger("httpx").setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.INFO if debug else logging.WARNING)
    logging.captureWarnings(True)
    return handler


def kafka_logger() -> logging.Logger:
    """The logger to hand to confluent-kafka clients (`"logger": kafka_logger()` in the config),
    so librdkafka's own lines come out in our format, redacted. They are delivered from the
    client's `poll()`/`consume()` calls, on the poll thread."""
    return logging.getLogger(KAFKA_LOGGER)


def format_exception_short(exc: BaseException) -> str:
    """`Type: message` of an exception, redacted: for `reason`-style fields and DLQ messages."""
    return redact("".join(traceback.format_exception_only(exc)).strip())


def secret_values_registered() -> int:
    """How many secret forms are registered (for start-up logging; never the values)."""
    return len(_secrets)


__all__ = [
    "KAFKA_LOGGER",
    "REDACTED",
    "ConsoleFormatter",
    "JsonFormatter",
    "RedactingFilter",
    "configure_logging",
    "format_exception_short",
    "kafka_logger",
    "redact",
    "register_secret",
    "register_settings_secrets",
    "secret_values_registered",
]

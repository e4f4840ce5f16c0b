"""The dead-letter stage: where a message goes when it cannot reach CleverTap.

A `Failure` says why, in terms an operator can act on; the DLQ record keeps the original bytes so
`dlq redrive` can re-publish it unchanged once the cause is fixed.

A copy the broker refuses as too large (MSG_SIZE_TOO_LARGE: a value near the topic's
`max.message.bytes` plus our headers) is still recorded, never fatal: it is written again with
its value cut to `TRUNCATED_VALUE_BYTES`, then without value, key or original headers, and the
`dlq.value.truncated` header gives the original size (the original stays readable at
`dlq.source.topic/partition/offset` while the source topic retains it). Every header we add is
redacted (`logs.redact`): a CleverTap error may echo a credential.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from confluent_kafka import KafkaError, KafkaException, Producer

from . import metrics
from .contracts import Failure, Letter
from .logs import redact

L = TypeVar("L", bound=Letter)

log = logging.getLogger(__name__)

HEADER_PREFIX = "dlq."
MAX_MESSAGE_BYTES = 1000
RETRY_DELAY_S = 1.0
#: Header naming the original value size when the DLQ copy's value was cut to fit the broker.
TRUNCATED_HEADER: Final = HEADER_PREFIX + "value.truncated"
#: How much of an oversized value the second attempt keeps (enough to recognise it).
TRUNCATED_VALUE_BYTES: Final = 64 * 1024
#: Keys above this size are dropped with the value on the last, minimal attempt.
_MINIMAL_KEY_BYTES: Final = 1024


KafkaHeaders = list[tuple[str, str | bytes | None]]


def producer_config(client: dict[str, Any]) -> dict[str, Any]:
    """The DLQ producer's librdkafka settings (this stage owns the producer): nothing counts as
    dead-lettered until every replica has it."""
    return {
        **client,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 20,
        "compression.type": "lz4",
        "message.timeout.ms": 120_000,
    }


def dlq_headers(entry: Letter, failure: Failure, group_id: str, now_ms: int) -> KafkaHeaders:
    """The original headers plus ours, which say where the record came from and why it is here."""
    ours = {
        "stage": failure.stage,
        "reason": failure.reason,
        "message": redact(failure.message).encode()[:MAX_MESSAGE_BYTES].decode("utf-8", "ignore"),
        "source.topic": entry.topic,
        "source.partition": str(entry.partition),
        "source.offset": str(entry.offset),
        "consumer.group": group_id,
        "timestamp": str(now_ms),
    }
    if failure.code is not None:
        ours["clevertap.code"] = str(failure.code)
    if entry.destination_id is not None:
        ours["destination.id"] = entry.destination_id
    if len(entry.failures) > 1:
        ours["failed.records"] = str(len(entry.failures))
    kept: KafkaHeaders = [(k, v) for k, v in entry.headers if not k.startswith(HEADER_PREFIX)]
    return kept + [(HEADER_PREFIX + k, redact(v).encode()) for k, v in ours.items()]


@dataclass(frozen=True, slots=True)
class _Copy:
    """What one attempt writes: level 0 is the whole record, 1 cuts the value, 2 keeps only
    our headers (the original headers or key may be what does not fit)."""

    value: bytes | None
    key: bytes | None
    headers: KafkaHeaders


def _copy(entry: Letter, headers: KafkaHeaders, level: int) -> _Copy:
    if level == 0:
        return _Copy(entry.value, entry.key, headers)
    size = str(len(entry.value or b"")).encode()
    if level == 1:
        value = (entry.value or b"")[:TRUNCATED_VALUE_BYTES]
        return _Copy(value, entry.key, [*headers, (TRUNCATED_HEADER, size)])
    ours = [(k, v) for k, v in headers if k.startswith(HEADER_PREFIX)]
    key = entry.key if entry.key is not None and len(entry.key) <= _MINIMAL_KEY_BYTES else None
    return _Copy(None, key, [*ours, (TRUNCATED_HEADER, size)])


_LAST_LEVEL: Final = 2


def _too_large(err: KafkaError) -> bool:
    return err.code() in (KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_RECORD)


class DeadLetters(Generic[L]):
    """Writes failed messages to the DLQ topic and reports each one once the broker has it.

    A message counts as done only after the broker acknowledged its DLQ copy (acks=all): until
    then its offset is not committed, so a crash cannot lose it. Writes the broker refuses are
    retried, never dropped. Runs on the poll thread: delivery callbacks fire inside `poll()`.
    """

    def __init__(
        self, producer: Producer, topic: str, group_id: str, on_written: Callable[[L], None]
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._group_id = group_id
        self._on_written = on_written
        self._pending = 0
        self._retry: list[tuple[float, L, Failure, int]] = []

    def send(self, entry: L, failure: Failure) -> None:
        self._pending += 1
        self._produce(entry, failure, 0)

    def _produce(self, entry: L, failure: Failure, level: int) -> None:
        headers = dlq_headers(entry, failure, self._group_id, int(time.time() * 1000))
        where = {
            "stage": failure.stage,
            "topic": entry.topic,
            "partition": entry.partition,
            "offset": entry.offset,
        }

        def delivered(err: KafkaError | None, _msg: object) -> None:
            if err is not None and _too_large(err) and level < _LAST_LEVEL:
                self._shrunk(entry, failure, err.str(), where)
                self._retry.append((0.0, entry, failure, level + 1))  # written by the next poll()
                return
            if err is not None:
                metrics.dlq_publish_failures.inc()
                log.warning("DLQ write failed, will retry", extra={**where, "error": err.str()})
                self._retry.append((time.monotonic() + RETRY_DELAY_S, entry, failure, level))
                return
            self._pending -= 1
            metrics.dead_lettered.labels(failure.stage, failure.reason).inc()
            self._on_written(entry)

        copy = _copy(entry, headers, level)
        while True:
            try:
                self._producer.produce(
                    self._topic,
                    value=copy.value,
                    key=copy.key,
                    headers=copy.headers,
                    timestamp=entry.timestamp_ms or 0,
                    on_delivery=delivered,
                )
                return
            except BufferError:  # local queue full: serve callbacks to make room
                self._producer.poll(0.05)
            except KafkaException as exc:  # larger than this producer's message.max.bytes
                err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                if err is None or not _too_large(err) or level >= _LAST_LEVEL:
                    raise
                self._shrunk(entry, failure, err.str(), where)
                level += 1
                copy = _copy(entry, headers, level)

    def _shrunk(self, entry: L, failure: Failure, error: str, where: dict[str, object]) -> None:
        """The copy did not fit: it is written again, smaller (not a failed write)."""
        log.warning(
            "DLQ copy too large for the broker; writing it with the value cut",
            extra={**where, "error": error, "value_bytes": len(entry.value or b"")},
        )

    def poll(self) -> None:
        self._producer.poll(0)
        if self._retry:
            now = time.monotonic()
            due = [r for r in self._retry if r[0] <= now]
            if due:
                self._retry = [r for r in self._retry if r[0] > now]
                for _, entry, failure, level in due:
                    self._produce(entry, failure, level)

    def pending(self) -> int:
        """DLQ writes not yet acknowledged."""
        return self._pending

    def flush(self, timeout: float) -> int:
        """Wait up to `timeout` for outstanding writes; return how many are still unacknowledged."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            self._producer.poll(0.05)
            self.poll()
        return self._pending

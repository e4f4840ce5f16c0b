"""The dead-letter stage: where a message goes when it cannot reach CleverTap.

A `Failure` says why, in terms an operator can act on; the DLQ record keeps the original bytes so
`dlq redrive` can re-publish it unchanged once the cause is fixed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from confluent_kafka import KafkaError, Producer

from . import metrics

if TYPE_CHECKING:
    from .offsets import Entry

log = logging.getLogger(__name__)

Stage = Literal["decode", "route", "transform", "deliver"]


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one message (or one record made from it) was not delivered.

    `reason` is a short label from a fixed set (metric label, `dlq.reason` header); `message` is
    the human detail and must never contain a secret or the payload; `code` is CleverTap's
    per-record error code or the HTTP status when there is one.
    """

    stage: Stage
    reason: str
    message: str
    code: int | None = None


HEADER_PREFIX = "dlq."
MAX_MESSAGE_BYTES = 1000
RETRY_DELAY_S = 1.0


KafkaHeaders = list[tuple[str, str | bytes | None]]


def dlq_headers(entry: Entry, failure: Failure, group_id: str, now_ms: int) -> KafkaHeaders:
    """The original headers plus ours, which say where the record came from and why it is here."""
    ours = {
        "stage": failure.stage,
        "reason": failure.reason,
        "message": failure.message.encode()[:MAX_MESSAGE_BYTES].decode("utf-8", "ignore"),
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
    return kept + [(HEADER_PREFIX + k, v.encode()) for k, v in ours.items()]


class DeadLetters:
    """Writes failed messages to the DLQ topic and reports each one once the broker has it.

    A message counts as done only after the broker acknowledged its DLQ copy (acks=all): until
    then its offset is not committed, so a crash cannot lose it. Writes the broker refuses are
    retried, never dropped. Runs on the poll thread: delivery callbacks fire inside `poll()`.
    """

    def __init__(
        self, producer: Producer, topic: str, group_id: str, on_written: Callable[[Entry], None]
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._group_id = group_id
        self._on_written = on_written
        self._pending = 0
        self._retry: list[tuple[float, Entry, Failure]] = []

    def send(self, entry: Entry, failure: Failure) -> None:
        self._pending += 1
        self._produce(entry, failure)

    def _produce(self, entry: Entry, failure: Failure) -> None:
        headers = dlq_headers(entry, failure, self._group_id, int(time.time() * 1000))

        def delivered(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                metrics.dlq_publish_failures.inc()
                log.warning(
                    "DLQ write failed, will retry",
                    extra={
                        "stage": failure.stage,
                        "topic": entry.topic,
                        "partition": entry.partition,
                        "offset": entry.offset,
                        "error": err.str(),
                    },
                )
                self._retry.append((time.monotonic() + RETRY_DELAY_S, entry, failure))
                return
            self._pending -= 1
            metrics.dead_lettered.labels(failure.stage, failure.reason).inc()
            self._on_written(entry)

        while True:
            try:
                self._producer.produce(
                    self._topic,
                    value=entry.value,
                    key=entry.key,
                    headers=headers,
                    timestamp=entry.timestamp_ms or 0,
                    on_delivery=delivered,
                )
                return
            except BufferError:  # local queue full: serve callbacks to make room
                self._producer.poll(0.05)

    def poll(self) -> None:
        self._producer.poll(0)
        if self._retry:
            now = time.monotonic()
            due = [r for r in self._retry if r[0] <= now]
            if due:
                self._retry = [r for r in self._retry if r[0] > now]
                for _, entry, failure in due:
                    self._produce(entry, failure)

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

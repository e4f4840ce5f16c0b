"""Publish JSON-lines RudderStack events to a topic in the project's schema and wire format.

The engine of `clevertap-consumer produce` (the command adds the terminal): it turns lines into
Kafka records with the codec's `Encoder`, keys them by user so one user's events stay in order
in one partition, and counts what happened to every line. Settings are `ClientSettings`, the
Kafka and registry variables the service reads, so producing needs neither DESTINATIONS_FILE nor
KAFKA_TOPICS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from confluent_kafka import KafkaException

from .codec import Encoder, EnvelopeError
from .settings import ClientSettings, load_client_settings, tool_producer_config

DEFAULT_KEY_FIELDS: Final = ("userId", "anonymousId")
DESTINATION_HEADER: Final = "destinationId"
#: How many line numbers a summary lists before it only counts.
LISTED_LINES: Final = 20


def load_produce_settings(**overrides: Any) -> ClientSettings:
    """Settings from the environment and secret files; errors name the variable, never its value."""
    return load_client_settings(ClientSettings, **overrides)


def producer_config(settings: ClientSettings, *, delivery_timeout_ms: int = 30000) -> dict[str, Any]:
    """librdkafka producer settings: the service's connection settings, idempotent, acks=all."""
    return tool_producer_config(
        settings, "clevertap-consumer-produce", delivery_timeout_ms=delivery_timeout_ms
    )


def _as_bytes(value: Any) -> bytes:
    """A JSON value as header/key bytes: text as UTF-8, anything else as its JSON form (42 → b"42")."""
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


def key_for(event: dict[str, Any], key_fields: Sequence[str]) -> bytes | None:
    """The first key field with a value; None lets the partitioner spread keyless events."""
    for name in key_fields:
        value = event.get(name)
        if value is not None and value != "":
            return _as_bytes(value)
    return None


@dataclass
class Summary:
    """What happened to the input, line by line."""

    read: int = 0
    produced: int = 0
    failed: int = 0
    invalid_lines: list[int] = field(default_factory=list)
    failed_lines: list[int] = field(default_factory=list)
    first_error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.invalid_lines

    def line(self) -> str:
        text = f"produced {self.produced}, failed {self.failed}, invalid {len(self.invalid_lines)}"
        if self.invalid_lines:
            listed = ", ".join(map(str, self.invalid_lines[:LISTED_LINES]))
            more = (
                f", … {len(self.invalid_lines) - LISTED_LINES} more"
                if len(self.invalid_lines) > LISTED_LINES
                else ""
            )
            text += f" (line{'s' if len(self.invalid_lines) > 1 else ''} {listed}{more})"
        return text


class Publisher:
    """Encodes and publishes events, counting deliveries as the broker acknowledges them."""

    def __init__(
        self,
        producer: Any,
        encoder: Encoder,
        topic: str,
        *,
        key_fields: Sequence[str] = DEFAULT_KEY_FIELDS,
        partition: int | None = None,
        rate: float | None = None,
        on_problem: Callable[[str], None] = lambda _message: None,
    ) -> None:
        self.producer = producer
        self.encoder = encoder
        self.topic = topic
        self.key_fields = tuple(key_fields)
        self.partition = partition
        self.rate = rate
        self.on_problem = on_problem
        self.summary = Summary()
        self._started = time.monotonic()
        self._sent = 0

    def publish_lines(
        self, lines: Iterable[bytes], on_line: Callable[[int], None] = lambda _n: None
    ) -> Summary:
        """Publish every line; `on_line(bytes_read)` after each (progress)."""
        for number, raw in enumerate(lines, start=1):
            self.publish_line(number, raw)
            on_line(len(raw))
        return self.summary

    def publish_line(self, number: int, raw: bytes) -> None:
        if not raw.strip():
            return
        summary = self.summary
        summary.read += 1
        try:
            event = orjson.loads(raw)
            value = self.encoder.encode(event)
        except orjson.JSONDecodeError as exc:
            self._invalid(number, f"not JSON ({exc.msg} at char {exc.pos})")
            return
        except EnvelopeError as exc:
            self._invalid(number, str(exc))
            return
        except (ValueError, TypeError, OverflowError) as exc:  # a value Avro cannot carry
            self._invalid(number, f"cannot be encoded ({type(exc).__name__})")
            return
        headers = []
        destination = event.get(DESTINATION_HEADER)
        if destination is not None and destination != "":
            headers.append((DESTINATION_HEADER, _as_bytes(destination)))
        self._pace()
        self._produce(number, value, key_for(event, self.key_fields), headers)

    def _invalid(self, number: int, why: str) -> None:
        self.summary.invalid_lines.append(number)
        self.on_problem(f"line {number}: {why}; skipped")

    def _pace(self) -> None:
        """Hold back to `rate` events per second, serving delivery reports while waiting."""
        self._sent += 1
        if self.rate is None:
            return
        while (wait := self._started + self._sent / self.rate - time.monotonic()) > 0:
            self.producer.poll(min(wait, 0.1))

    def _produce(
        self, number: int, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        def delivered(err: Any, _msg: Any) -> None:
            if err is None:
                self.summary.produced += 1
            else:
                self._failed(number, str(err))

        kwargs: dict[str, Any] = {"key": key, "headers": headers, "on_delivery": delivered}
        if self.partition is not None:
            kwargs["partition"] = self.partition
        while True:
            try:
                self.producer.produce(self.topic, value, **kwargs)
                break
            except BufferError:  # local queue full: let deliveries drain it
                self.producer.poll(0.1)
            except KafkaException as exc:  # e.g. record too large, unknown partition
                self._failed(number, str(exc.args[0]) if exc.args else type(exc).__name__)
                return
        self.producer.poll(0)

    def _failed(self, number: int, why: str) -> None:
        summary = self.summary
        summary.failed += 1
        summary.failed_lines.append(number)
        if summary.first_error is None:
            summary.first_error = why
            self.on_problem(f"line {number}: not produced: {why}")

    def finish(self, timeout: float, on_wait: Callable[[], None] = lambda: None) -> Summary:
        """Wait for every delivery report; what is still queued after `timeout` counts as failed."""
        deadline = time.monotonic() + timeout
        while len(self.producer) and time.monotonic() < deadline:
            self.producer.flush(0.2)
            on_wait()
        left = len(self.producer)
        if left:
            self.summary.failed += left
            self.on_problem(f"{left} events were still undelivered after {timeout:.0f} s")
        return self.summary

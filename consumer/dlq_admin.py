"""Reading the dead-letter topic back: the engine of `clevertap-consumer dlq inspect|redrive`.

An operator looks at the DLQ to learn why events failed, fixes the cause (a destination, a
passcode, a schema), then re-publishes the chosen records to the topic they came from, where the
service reads them again. Both commands must be safe to run against a live DLQ:

- Reads are bounded: the end offsets are captured once, before reading, so the command ends even
  while the service keeps dead-lettering. Reads use `assign()` and never commit, so they leave no
  consumer-group state behind and cannot disturb anyone else's offsets.
- A redriven record is the original record again (key, value, timestamp, headers) with no `dlq.*`
  header, so the service cannot confuse it with a dead letter, plus `redrive.from` naming the DLQ
  record it came from. A redrive counts a record only once the broker acknowledged it (acks=all,
  idempotent producer).
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from pydantic import Field

from .codec import DecodeError, Decoder, to_message
from .contracts import Headers
from .dlq import HEADER_PREFIX
from .settings import DEFAULT_DLQ_TOPIC, ClientSettings, kafka_client_config, tool_producer_config
from .source import first_offsets_at, message_headers

#: The header a redriven record carries: `<dlq topic>/<partition>/<offset>` of its DLQ copy.
REDRIVE_HEADER: Final = "redrive.from"
#: How long a read may see no record and no end-of-partition before it gives up (an unreachable
#: broker looks like silence to a consumer, so without this a read would never end).
IDLE_TIMEOUT_S: Final = 30.0
METADATA_TIMEOUT_S: Final = 15.0
#: Consumer errors that only say a connection is down: librdkafka reconnects by itself.
_TRANSIENT: Final = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN})


class DlqSettings(ClientSettings):
    """The tools' connection variables plus DLQ_TOPIC, so the commands read the topic the service
    writes without being told."""

    dlq_topic: str = Field(DEFAULT_DLQ_TOPIC, min_length=1, description="Dead-letter topic.")


class DlqError(Exception):
    """The DLQ could not be read or written as asked; the message is safe to print."""


class UnknownTopicError(DlqError):
    """A topic the operator named does not exist (a usage error, not an outage)."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic!r} does not exist")
        self.topic = topic


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One DLQ record, split into what the service added (`dlq`) and the original record."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    dlq: dict[str, str]  # the dlq.* headers, prefix removed, as text
    headers: Headers  # the original record's headers, in order

    @classmethod
    def from_message(cls, msg: Message) -> DeadLetter:
        ts_type, ts = msg.timestamp()
        ours: dict[str, str] = {}
        original: Headers = []
        for name, value in message_headers(msg):
            if name.startswith(HEADER_PREFIX):
                ours[name.removeprefix(HEADER_PREFIX)] = _text(value) or ""
            else:
                original.append((name, value))
        return cls(
            topic=msg.topic() or "",
            partition=msg.partition() or 0,
            offset=msg.offset() or 0,
            timestamp_ms=None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts,
            key=msg.key(),
            value=msg.value(),
            dlq=ours,
            headers=original,
        )

    @property
    def ref(self) -> str:
        """Where this record sits in the DLQ, as the `redrive.from` header spells it."""
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def stage(self) -> str | None:
        return self.dlq.get("stage")

    @property
    def reason(self) -> str | None:
        return self.dlq.get("reason")

    @property
    def destination(self) -> str | None:
        return self.dlq.get("destination.id")

    @property
    def source_topic(self) -> str | None:
        return self.dlq.get("source.topic") or None

    @property
    def source_partition(self) -> int | None:
        raw = self.dlq.get("source.partition", "")
        return int(raw) if raw.isdigit() else None

    @property
    def code(self) -> str | None:
        return self.dlq.get("clevertap.code")


@dataclass(frozen=True, slots=True)
class Filters:
    """Which dead letters a command works on: each given filter must match (values of one filter
    are alternatives). Times compare with the record's Kafka timestamp, which the DLQ copy keeps
    from the original message: `since` is inclusive, `until` exclusive."""

    stages: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()
    destinations: frozenset[str] = frozenset()
    since_ms: int | None = None
    until_ms: int | None = None

    def match(self, letter: DeadLetter) -> bool:
        if self.stages and letter.stage not in self.stages:
            return False
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.destinations and letter.destination not in self.destinations:
            return False
        if self.since_ms is not None or self.until_ms is not None:
            ts = letter.timestamp_ms
            if ts is None:
                return False
            if self.since_ms is not None and ts < self.since_ms:
                return False
            if self.until_ms is not None and ts >= self.until_ms:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Window:
    """The offsets of one partition a command reads: [start, end)."""

    partition: int
    start: int
    end: int


def consumer_config(settings: ClientSettings) -> dict[str, Any]:
    """A reader that leaves no trace: librdkafka insists on a group id, but nothing is committed
    and `assign()` never joins the group."""
    return {
        **kafka_client_config(settings),
        "client.id": "clevertap-consumer-dlq",
        "group.id": "clevertap-consumer-dlq-tools",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }


class DlqReader:
    """Reads a bounded range of the DLQ topic (see the module docstring for why bounded)."""

    def __init__(self, conf: dict[str, Any], topic: str, *, idle_timeout: float = IDLE_TIMEOUT_S) -> None:
        self.topic = topic
        self.idle_timeout = idle_timeout
        self._consumer = Consumer(conf)

    def close(self) -> None:
        self._consumer.close()

    def topics(self) -> dict[str, int]:
        """Every topic of the cluster and its partition count (a redrive checks targets here
        rather than letting a produce auto-create a mistyped topic)."""
        try:
            md = self._consumer.list_topics(timeout=METADATA_TIMEOUT_S)
        except KafkaException as exc:
            raise DlqError(f"cannot read the cluster's topics: {_kafka_text(exc)}") from None
        return {name: len(t.partitions) for name, t in md.topics.items() if t.error is None}

    def plan(self, since_ms: int | None = None, topics: dict[str, int] | None = None) -> list[Window]:
        """The range to read, fixed now: from the start (or the first record at/after
        `since_ms`) to the end offsets of this moment."""
        known = self.topics() if topics is None else topics
        if self.topic not in known:
            raise UnknownTopicError(self.topic)
        partitions = range(known[self.topic])
        try:
            bounds = {
                p: self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=METADATA_TIMEOUT_S
                )
                for p in partitions
            }
            starts = {p: low for p, (low, _high) in bounds.items()}
            if since_ms is not None:
                # Nothing before the first record at/after `since` can match the filter, so
                # seeking there skips only records it would drop.
                ends = {(self.topic, p): high for p, (_low, high) in bounds.items()}
                found = first_offsets_at(self._consumer, since_ms, ends, timeout=METADATA_TIMEOUT_S)
                starts.update({p: offset for (_topic, p), offset in found.items()})
        except KafkaException as exc:
            raise DlqError(f"cannot read the offsets of {self.topic!r}: {_kafka_text(exc)}") from None
        return [Window(p, max(starts[p], bounds[p][0]), bounds[p][1]) for p in partitions]

    def read(self, windows: Iterable[Window]) -> Iterator[DeadLetter]:
        """The records in `windows`, each partition's in offset order (partitions interleave)."""
        todo = {w.partition: w for w in windows if w.start < w.end}
        if not todo:
            return
        self._consumer.assign([TopicPartition(self.topic, w.partition, w.start) for w in todo.values()])
        try:
            quiet_since = time.monotonic()
            while todo:
                batch = self._consumer.consume(500, 0.5)
                if batch:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > self.idle_timeout:
                    raise DlqError(
                        f"nothing read from {self.topic!r} for {self.idle_timeout:.0f} s with"
                        f" {len(todo)} partition(s) unfinished; is the broker reachable?"
                    )
                for msg in batch:
                    partition = msg.partition()
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            # The end of what is readable now: with read_committed that can be
                            # short of the captured end (an open transaction, a control record).
                            todo.pop(partition or 0, None)
                        elif err.fatal() or not (err.retriable() or err.code() in _TRANSIENT):
                            raise DlqError(f"reading {self.topic!r} failed: {err.str()}")
                        continue
                    window = todo.get(partition or 0)
                    offset = msg.offset() or 0
                    if window is None or offset >= window.end:
                        continue  # written after the command started: not ours to read
                    yield DeadLetter.from_message(msg)
                    if offset >= window.end - 1:
                        del todo[window.partition]
        finally:
            self._consumer.unassign()


def _kafka_text(exc: KafkaException) -> str:
    """librdkafka's own words for a failure (never the configuration, so never a secret)."""
    arg = exc.args[0] if exc.args else None
    return arg.str() if isinstance(arg, KafkaError) else str(exc)


# --- inspect ----------------------------------------------------------------------------------

SummaryKey = tuple[str, str, str, str, str]  # stage, reason, code, destination, source topic


@dataclass
class Summary:
    """Counts of the matching dead letters by what an operator acts on."""

    read: int = 0
    matched: int = 0
    groups: Counter[SummaryKey] = field(default_factory=Counter)
    latest_ms: dict[SummaryKey, int] = field(default_factory=dict)

    def add(self, letter: DeadLetter) -> None:
        key = (
            letter.stage or "?",
            letter.reason or "?",
            letter.code or "",
            letter.destination or "",
            letter.source_topic or "",
        )
        self.matched += 1
        self.groups[key] += 1
        at = letter.dlq.get("timestamp", "")
        if at.isdigit():
            self.latest_ms[key] = max(self.latest_ms.get(key, 0), int(at))


def scan(
    letters: Iterable[DeadLetter],
    filters: Filters,
    on_match: Callable[[DeadLetter], None],
    *,
    limit: int | None = None,
) -> Summary:
    """Feed the matching dead letters to `on_match`, at most `limit` of them, and count them."""
    summary = Summary()
    for letter in letters:
        summary.read += 1
        if not filters.match(letter):
            continue
        summary.add(letter)
        on_match(letter)
        if limit is not None and summary.matched >= limit:
            break
    return summary


def _bytes_json(value: bytes | None) -> str | dict[str, str] | None:
    """Bytes for a JSON reader: text when they are UTF-8, else base64 under a key that says so."""
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode()}


def letter_json(letter: DeadLetter, decoder: Decoder | None = None) -> dict[str, Any]:
    """One dead letter as `dlq inspect --format json` prints it."""
    out: dict[str, Any] = {
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "timestamp": letter.timestamp_ms,
        "key": _bytes_json(letter.key),
        "dlq": dict(letter.dlq),
        "headers": [[name, _bytes_json(value)] for name, value in letter.headers],
        "value_bytes": None if letter.value is None else len(letter.value),
    }
    if decoder is not None:
        try:
            out["event"] = to_message(decoder.decode(letter.value))
        except DecodeError as exc:
            out["event"] = None
            out["undecodable"] = {"reason": exc.reason, "message": exc.message}
    return out


# --- redrive ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """Where a dead letter goes back to; `partition` None lets the producer's partitioner choose."""

    topic: str
    partition: int | None


def target_for(letter: DeadLetter, topics: dict[str, int], to: str | None) -> Target | str:
    """The redrive target, or why there is none.

    Back in its source topic a record returns to its original partition, so it stays in line
    with the other events of its key whatever partitioner the original producer used; in
    another topic (`--to`) the key decides.
    """
    cut = letter.dlq.get("value.truncated")
    if cut is not None:  # re-publishing a cut value would turn one poison pill into another
        where = "/".join(
            letter.dlq.get(k, "?") for k in ("source.topic", "source.partition", "source.offset")
        )
        return f"the DLQ copy's value was cut from {cut} bytes to fit the broker; the original is at {where}"
    topic = to or letter.source_topic
    if topic is None:
        return "no dlq.source.topic header (use --to)"
    partitions = topics.get(topic)
    if partitions is None:
        return f"source topic {topic!r} does not exist"
    source = letter.source_partition
    if topic == letter.source_topic and source is not None and source < partitions:
        return Target(topic, source)
    return Target(topic, None)


def redriven_headers(letter: DeadLetter) -> Headers:
    """The original headers, minus any earlier `redrive.from`, plus ours: a record redriven,
    dead-lettered again and redriven again names only its latest DLQ copy."""
    kept = [(k, v) for k, v in letter.headers if k != REDRIVE_HEADER]
    return [*kept, (REDRIVE_HEADER, letter.ref.encode())]


def producer_config(settings: ClientSettings, *, delivery_timeout_ms: int) -> dict[str, Any]:
    """The tools' idempotent acks=all producer, named so broker logs tell a redrive apart."""
    return tool_producer_config(settings, "clevertap-consumer-dlq", delivery_timeout_ms=delivery_timeout_ms)


#: How many examples of each kind of problem a redrive keeps to show (it counts them all).
EXAMPLES: Final = 20


@dataclass
class RedriveCounts:
    """What became of every dead letter read. Problems are counted in full but only a few
    examples are kept, so a redrive of a huge DLQ holds no per-record state."""

    redriven: int = 0
    skipped: int = 0  # did not match the filters
    unroutable: Counter[str] = field(default_factory=Counter)  # why → records
    failed: int = 0
    examples: list[str] = field(default_factory=list)  # "<ref>: <why>"
    #: (target topic, stage, reason) → records sent, or to send on a dry run
    targets: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def by_topic(self) -> Counter[str]:
        topics: Counter[str] = Counter()
        for (topic, _stage, _reason), n in self.targets.items():
            topics[topic] += n
        return topics

    @property
    def ok(self) -> bool:
        """Every selected record is back in a topic: nothing failed, nothing lacked a target."""
        return not self.failed and not self.unroutable

    def problem(self, ref: str, why: str) -> None:
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"{ref}: {why}")

    def line(self, *, dry_run: bool = False) -> str:
        unroutable = sum(self.unroutable.values())
        if dry_run:
            return (
                f"would redrive {sum(self.targets.values())}, skipped by filter {self.skipped},"
                f" unroutable {unroutable}"
            )
        return (
            f"redriven {self.redriven}, skipped by filter {self.skipped},"
            f" unroutable {unroutable}, failed {self.failed}"
        )


class Redriver:
    """Re-publishes dead letters and counts each once the broker confirms it (or refuses it)."""

    def __init__(
        self, producer: Any, topics: dict[str, int], to: str | None, *, dry_run: bool = False
    ) -> None:
        self.producer = producer
        self.topics = topics
        self.to = to
        self.dry_run = dry_run
        self.counts = RedriveCounts()
        self._pending: set[str] = set()

    def skip(self) -> None:
        self.counts.skipped += 1

    def send(self, letter: DeadLetter) -> None:
        counts = self.counts
        target = target_for(letter, self.topics, self.to)
        if isinstance(target, str):
            counts.unroutable[target] += 1
            counts.problem(letter.ref, target)
            return
        counts.targets[target.topic, letter.stage or "?", letter.reason or "?"] += 1
        if self.dry_run:
            return
        ref = letter.ref

        def delivered(err: KafkaError | None, _msg: object) -> None:
            self._pending.discard(ref)
            if err is None:
                counts.redriven += 1
            else:
                self._fail(ref, err.str())

        kwargs: dict[str, Any] = {
            "key": letter.key,
            "value": letter.value,
            "headers": redriven_headers(letter),
            "timestamp": letter.timestamp_ms or 0,
            "on_delivery": delivered,
        }
        if target.partition is not None:
            kwargs["partition"] = target.partition
        while True:
            try:
                self.producer.produce(target.topic, **kwargs)
                break
            except BufferError:  # local queue full: serve delivery reports to make room
                self.producer.poll(0.1)
            except KafkaException as exc:  # e.g. larger than the topic allows
                self._fail(ref, _kafka_text(exc))
                return
        self._pending.add(ref)
        self.producer.poll(0)

    def _fail(self, ref: str, why: str) -> None:
        self.counts.failed += 1
        self.counts.problem(ref, why)

    def finish(self, timeout: float) -> RedriveCounts:
        """Wait for the broker's answer on every record; what is still unanswered has failed."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            self.producer.flush(0.5)
        for ref in sorted(self._pending):
            self._fail(ref, f"no answer from the broker within {timeout:.0f} s")
        self._pending.clear()
        return self.counts

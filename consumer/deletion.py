"""User deletion (GDPR/CCPA erasure): regulation requests from Kafka → CleverTap's Delete Profile API.

A small flow of its own beside the event pipeline, with its own consumer group, so erasure
requests are never queued behind the event backlog and a slow deletion never holds back event
delivery (it shares no thread, batch or concurrency budget with uploads).

A request is RudderStack's regulation shape, one JSON object per Kafka record:
`{"regulationType": "suppress_with_delete", "destinationId": "dest-0", "users": [{"userId": "u1"},
{"cleverTapId": "__g9f3a"}]}` (`destinationIds: [...]`, as RudderStack's API takes it, works too).
Each destination's users are deleted with `POST /1/delete/profiles.json`: userIds as `identity`,
cleverTapIds as `guid`, never both keys in one body, ≤ 100 values a body, ≤ 3 such requests in
flight per account (CleverTap's cap for this API). 429, 5xx and network errors are retried with
the upload retry budget; other answers, an unknown destination and a malformed request go to
the DLQ with a reason. The request's offset is committed only after every call succeeded or its
DLQ copy is acknowledged.

Ordering: before deleting, the flow waits (bounded) until the event consumer group has committed
past every event that was already in the event topics when the request was handled, so those
events cannot re-create the profile after it is gone. Events produced later still can: stop
sending a user's events at the source before requesting the deletion (README, "User deletion").
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson
from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from . import metrics
from .contracts import Failure, Target
from .deliver import DeliveryOptions
from .deliver._client import NoReply, post_upload
from .destinations import DestinationsFile
from .dlq import DeadLetters
from .offsets import Entry
from .source import message_headers

log = logging.getLogger(__name__)

DELETE_PATH: Final = "/1/delete/profiles.json"
REGULATION_TYPE: Final = "suppress_with_delete"
MAX_IDS_PER_REQUEST: Final = 100
MAX_IN_FLIGHT_PER_ACCOUNT: Final = 3
ORDERING_WAIT_S: Final = 300.0  # longest wait for the event group to pass the request

# DLQ reasons (metric labels, `dlq.reason`).
MALFORMED: Final = "malformed_request"
UNSUPPORTED: Final = "unsupported_regulation"
UNKNOWN_DESTINATION: Final = "unknown_destination"
REJECTED: Final = "clevertap_rejected"
EXHAUSTED: Final = "retries_exhausted"
DELETION_REASONS: Final = (MALFORMED, UNSUPPORTED, UNKNOWN_DESTINATION, REJECTED, EXHAUSTED)


# ---------------------------------------------------------------------------------------------
# The request


@dataclass(frozen=True, slots=True)
class DeletionRequest:
    """Who to delete where: ids deduplicated, in the order given."""

    destination_ids: tuple[str, ...]
    user_ids: tuple[str, ...]
    clevertap_ids: tuple[str, ...]


def _text_id(value: Any) -> str | None:
    if type(value) is int:
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def parse_request(value: bytes | None) -> DeletionRequest | Failure:
    """A regulation record's deletion request, or the DLQ failure saying what is wrong with it."""

    def bad(reason: str, text: str) -> Failure:
        return Failure("decode", reason, text)

    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return bad(MALFORMED, "regulation request is not JSON")
    if not isinstance(doc, dict):
        return bad(MALFORMED, "regulation request is not a JSON object")
    kind = doc.get("regulationType")
    if kind != REGULATION_TYPE:
        return bad(UNSUPPORTED, f"regulationType {str(kind)[:40]!r}: only {REGULATION_TYPE!r} deletes")
    ids = doc.get("destinationIds", [doc["destinationId"]] if "destinationId" in doc else None)
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        return bad(MALFORMED, "needs destinationId (a string) or destinationIds (a list of strings)")
    users = doc.get("users")
    if not isinstance(users, list) or not all(isinstance(u, dict) for u in users):
        return bad(MALFORMED, "users must be a list of objects")
    user_ids = [u for u in (_text_id(u.get("userId")) for u in users) if u is not None]
    guids = [g for g in (_text_id(u.get("cleverTapId")) for u in users) if g is not None]
    if not user_ids and not guids:
        return bad(MALFORMED, "no user has a userId or cleverTapId")
    return DeletionRequest(
        tuple(dict.fromkeys(ids)), tuple(dict.fromkeys(user_ids)), tuple(dict.fromkeys(guids))
    )


def request_bodies(request: DeletionRequest) -> list[bytes]:
    """The Delete Profile bodies for one destination: one key each, ≤ 100 values each."""
    bodies = []
    for key, values in (("identity", request.user_ids), ("guid", request.clevertap_ids)):
        for i in range(0, len(values), MAX_IDS_PER_REQUEST):
            bodies.append(orjson.dumps({key: list(values[i : i + MAX_IDS_PER_REQUEST])}))
    return bodies


def build_request(destination_id: str, user_ids: Iterable[str], clevertap_ids: Iterable[str]) -> bytes:
    """A regulation record in RudderStack's shape (what `delete-users` publishes)."""
    users = [{"userId": u} for u in user_ids] + [{"cleverTapId": g} for g in clevertap_ids]
    return orjson.dumps({"regulationType": REGULATION_TYPE, "destinationId": destination_id, "users": users})


def delete_url(host: str, base_url: str | None) -> str:
    if base_url:
        return base_url.rstrip("/") + DELETE_PATH
    return f"https://{host}{DELETE_PATH}"


def deletion_targets(destinations: DestinationsFile, base_url: str | None) -> dict[str, Target]:
    """destinationId → where its deletions go (same account, region and passcode as uploads)."""
    return {
        d.id: Target(d.account_id, delete_url(d.host, base_url), d.resolve_passcode())
        for d in destinations.destinations
    }


# ---------------------------------------------------------------------------------------------
# Sending


class _RetryableError(Exception):
    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


class _StoppedError(Exception):
    """The service is stopping: leave the request uncommitted for the next run."""


class Sender:
    """Delete Profile calls with the upload retry rules, ≤ 3 in flight per account."""

    def __init__(self, options: DeliveryOptions, stop: threading.Event) -> None:
        self._options = options
        self._stop = stop
        self._client: httpx.AsyncClient | None = None
        self._slots: dict[str, asyncio.Semaphore] = {}

    async def delete(self, target: Target, bodies: Sequence[bytes]) -> Failure | None:
        """None when every body was accepted, else the first failure; _StoppedError on shutdown."""
        if self._client is None:
            self._client = self._options.http_client()
        results = await asyncio.gather(*(self._one(target, b) for b in bodies))
        return next((r for r in results if r is not None), None)

    async def _one(self, target: Target, body: bytes) -> Failure | None:
        o = self._options
        started = time.monotonic()
        attempts = 0

        def out_of_budget(state: RetryCallState) -> bool:
            if self._stop.is_set():
                return True
            return (
                attempts >= o.max_attempts
                or time.monotonic() - started + state.upcoming_sleep > o.retry_budget_s
            )

        slot = self._slots.setdefault(target.account_id, asyncio.Semaphore(MAX_IN_FLIGHT_PER_ACCOUNT))
        retrying = AsyncRetrying(
            stop=out_of_budget,
            wait=wait_random_exponential(multiplier=o.backoff_initial_s, max=o.backoff_max_s),
            retry=retry_if_exception_type(_RetryableError),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    async with slot:
                        assert self._client is not None
                        reply = await post_upload(self._client, target, body)
                    if isinstance(reply, NoReply):
                        raise _RetryableError(f"no response ({reply.error})", None)
                    metrics.deletion_calls.labels(target.account_id, str(reply.status)).inc()
                    if reply.status == 429 or reply.status >= 500:
                        raise _RetryableError(f"HTTP {reply.status}", reply.status)
                    if not 200 <= reply.status < 300:
                        return Failure(
                            "deliver", REJECTED, f"Delete Profile answered HTTP {reply.status}", reply.status
                        )
        except _RetryableError as exc:
            if self._stop.is_set():
                raise _StoppedError from None
            return Failure("deliver", EXHAUSTED, f"{exc} after {attempts} attempts", exc.code)
        return None

    async def _sleep(self, seconds: float) -> None:
        """The backoff, cut short when the service stops (the next check then gives up)."""
        end = time.monotonic() + seconds
        while not self._stop.is_set() and (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(0.1, left))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


# ---------------------------------------------------------------------------------------------
# The flow


@dataclass(frozen=True, slots=True)
class DeletionOptions:
    topic: str
    group_id: str  # the regulation flow's own group
    event_group_id: str
    event_topics: tuple[str, ...]
    dlq_topic: str
    ordering_wait_s: float = ORDERING_WAIT_S


class DeletionFlow:
    """Consume regulation requests one at a time, delete, then commit (or dead-letter, then commit)."""

    def __init__(
        self,
        options: DeletionOptions,
        *,
        client_config: dict[str, Any],
        targets: Mapping[str, Target],
        delivery: DeliveryOptions,
        producer: Producer,
    ) -> None:
        self.options = options
        self._targets = dict(targets)
        self._client_config = client_config
        # One request may wait for retries for the whole budget: stay in the group meanwhile.
        poll_interval_ms = int(max(300.0, delivery.retry_budget_s + options.ordering_wait_s + 60) * 1000)
        self._consumer = Consumer(
            {
                **client_config,
                "group.id": options.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "max.poll.interval.ms": poll_interval_ms,
            }
        )
        self._producer = producer
        self._delivery = delivery
        self._written: set[int] = set()
        self._dlq: DeadLetters[Entry] = DeadLetters(
            producer, options.dlq_topic, options.group_id, lambda e: self._written.add(id(e))
        )

    def replace_targets(self, targets: Mapping[str, Target]) -> None:
        """Swap destinationId → target in one assignment (a destinations reload, another thread)."""
        self._targets = dict(targets)

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set. An unfinished request is left uncommitted for the next run."""
        loop = asyncio.new_event_loop()
        sender = Sender(self._delivery, stop)
        self._consumer.subscribe([self.options.topic])
        last_error = ""
        try:
            while not stop.is_set():
                m = self._consumer.poll(0.5)
                self._dlq.poll()
                if m is None:
                    continue
                if m.error() is not None:
                    text = str(m.error())
                    if text != last_error:  # e.g. the topic does not exist yet: say so once
                        log.warning("regulation topic: %s", text, extra={"topic": self.options.topic})
                        last_error = text
                    continue
                last_error = ""
                if not self._handle(m, loop, sender, stop):
                    break
                self._consumer.commit(message=m, asynchronous=False)
        except KafkaException as exc:
            log.error("regulation flow stopped on a Kafka error: %s", exc)
        finally:
            loop.run_until_complete(sender.close())
            loop.close()
            self._consumer.close()
            self._producer.flush(5)

    def _handle(
        self, m: Message, loop: asyncio.AbstractEventLoop, sender: Sender, stop: threading.Event
    ) -> bool:
        """True when the request is done (deleted or dead-lettered, acknowledged)."""
        _, ts = m.timestamp()
        entry = Entry(
            m.topic() or "",
            m.partition() or 0,
            m.offset() or 0,
            m.key(),
            m.value(),
            message_headers(m),
            ts if ts > 0 else None,
        )
        request = parse_request(m.value())
        failure: Failure | None = request if isinstance(request, Failure) else None
        if isinstance(request, DeletionRequest):
            unknown = [d for d in request.destination_ids if d not in self._targets]
            if unknown:
                failure = Failure(
                    "route", UNKNOWN_DESTINATION, f"destinationId {unknown[0][:100]!r} is not configured"
                )
            else:
                if not self._wait_for_events(stop):
                    return False
                bodies = request_bodies(request)
                try:
                    for dest in request.destination_ids:
                        entry.destination_id = dest
                        failure = loop.run_until_complete(sender.delete(self._targets[dest], bodies))
                        if failure is not None:
                            break
                except _StoppedError:
                    return False
                if failure is None:
                    metrics.deletion_requests.labels("deleted").inc()
                    metrics.deleted_ids.inc(len(request.user_ids) + len(request.clevertap_ids))
                    log.info(
                        "users deleted",
                        extra={
                            "destinations": list(request.destination_ids),
                            "user_ids": len(request.user_ids),
                            "clevertap_ids": len(request.clevertap_ids),
                            "offset": entry.offset,
                        },
                    )
                    return True
        assert failure is not None
        log.warning(
            "deletion request dead-lettered", extra={"reason": failure.reason, "offset": entry.offset}
        )
        self._dlq.send(entry, failure)
        while id(entry) not in self._written:
            if stop.is_set():
                return False
            self._producer.poll(0.1)
            self._dlq.poll()
        self._written.discard(id(entry))
        metrics.deletion_requests.labels("dead_lettered").inc()
        return True

    def _wait_for_events(self, stop: threading.Event) -> bool:
        """Wait (bounded) until the event group has committed past today's end of the event topics."""
        if not self.options.event_topics or self.options.ordering_wait_s <= 0:
            return True
        watcher = Consumer(
            {**self._client_config, "group.id": self.options.event_group_id, "enable.auto.commit": False}
        )
        try:
            ends = _end_offsets(watcher, self.options.event_topics)
            deadline = time.monotonic() + self.options.ordering_wait_s
            while True:
                behind = _behind(watcher, ends)
                if not behind or time.monotonic() >= deadline:
                    if behind:
                        log.warning(
                            "deleting while events older than the request are still unprocessed; they may re-create the profile",
                            extra={"partitions_behind": behind},
                        )
                    return True
                if stop.wait(1.0):
                    return False
        finally:
            watcher.close()


def _end_offsets(consumer: Consumer, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    meta = consumer.list_topics(timeout=10)
    ends = {}
    for topic in topics:
        t = meta.topics.get(topic)
        if t is None or t.error is not None:
            continue
        for p in t.partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > 0:
                ends[(topic, p)] = high
    return ends


def _behind(consumer: Consumer, ends: Mapping[tuple[str, int], int]) -> int:
    if not ends:
        return 0
    committed = consumer.committed([TopicPartition(t, p) for t, p in ends], timeout=10)
    done = {(tp.topic, tp.partition): tp.offset for tp in committed}
    return sum(1 for tp, end in ends.items() if done.get(tp, -1) < end)


# ---------------------------------------------------------------------------------------------
# Publishing (`delete-users`)


def read_ids(lines: Iterable[str]) -> tuple[list[str], list[str], list[int]]:
    """(userIds, cleverTapIds, bad line numbers) from an erasure ticket's file: one id per line,
    a bare line being a userId, or a JSON object with `userId` and/or `cleverTapId`."""
    user_ids: list[str] = []
    guids: list[str] = []
    bad: list[int] = []
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if not text.startswith("{"):
            user_ids.append(text)
            continue
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            doc = None
        u = _text_id(doc.get("userId")) if isinstance(doc, dict) else None
        g = _text_id(doc.get("cleverTapId")) if isinstance(doc, dict) else None
        if u is None and g is None:
            bad.append(n)
        if u is not None:
            user_ids.append(u)
        if g is not None:
            guids.append(g)
    return user_ids, guids, bad


@dataclass(slots=True)
class PublishSummary:
    requests: int = 0
    user_ids: int = 0
    clevertap_ids: int = 0


def publish(
    producer: Producer,
    topic: str,
    *,
    destination_id: str,
    user_ids: Sequence[str],
    clevertap_ids: Sequence[str],
    progress: Callable[[PublishSummary], None] = lambda _s: None,
    per_request: int = 1000,
) -> PublishSummary:
    """Publish deletion requests (≤ `per_request` users each) and wait until the broker has them.

    Raises KafkaException when a request could not be written."""
    summary = PublishSummary()
    errors: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    users = [("u", u) for u in dict.fromkeys(user_ids)] + [("g", g) for g in dict.fromkeys(clevertap_ids)]
    for i in range(0, len(users), per_request):
        chunk = users[i : i + per_request]
        us = [v for k, v in chunk if k == "u"]
        gs = [v for k, v in chunk if k == "g"]
        producer.produce(
            topic, build_request(destination_id, us, gs), key=destination_id.encode(), on_delivery=delivered
        )
        summary.requests += 1
        summary.user_ids += len(us)
        summary.clevertap_ids += len(gs)
        producer.poll(0)
        progress(summary)
    remaining = producer.flush(30)
    if errors or remaining:
        raise KafkaException(errors[0] if errors else f"{remaining} request(s) not acknowledged")
    return summary

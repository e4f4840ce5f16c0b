"""The pipeline as a chain of steps: process (decode → route → transform → batch) → deliver → commit.

Modelled on getsentry/arroyo's `ProcessingStrategy`: every step has `submit / poll / join(timeout)
/ close`, hands its output to the next one, and `poll()` / `join()` cascade down the chain, so
the commit step (the last) runs after whatever finished in the same turn. A step that cannot
take more says so by raising `MessageRejected` from `submit`; the caller (consumer.pipeline) keeps
the messages, pauses the source and offers them again later — backpressure is a signal of the
step that owns the limit, not a global check in the loop.

Replay and dry run are policies around the chain (`StopPolicy`, `CommitPolicy`), not branches in
the hot path. All steps run on the poll thread; the deliverer's own thread is behind
`Deliverer.submit/results`.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from confluent_kafka import Message

from . import metrics
from .batch import Batch, Batcher, UnencodableRecordError
from .codec import DecodeError
from .consent import withheld
from .contracts import NO_HEADERS, CommitPoint, Failure, TopicPartitionKey
from .deliver import BatchResult
from .offsets import SEEN, Budget, Entry, OffsetTracker
from .route import Route, Router
from .source import message_headers
from .transform import Accepted, Filtered

log = logging.getLogger(__name__)

T_contra = TypeVar("T_contra", contravariant=True)

TRANSIENT_DECODE_BACKOFF_S = 5.0
# Completions are committed (watermark + offset map) as soon as they are drained, at most once per
# this interval by default (COMMIT_INTERVAL_MS): a kill -9 repeats what CleverTap accepted and
# was not committed yet, so every millisecond between a reply and its commit is events doubled.
COMMIT_EVERY_S = 0.02
# A partition sought back to re-read deferred messages is sought again only if something lower
# became due, or after this long without the re-read getting past its lowest deferred offset.
REWIND_RETRY_S = 5.0
# An account whose in-flight budget is full pauses consumption for at most this long (a busy,
# healthy account drains in less); one still full after it has its new messages deferred.
DEFER_AFTER_S = 1.0


class MessageRejected(Exception):  # noqa: N818 - arroyo's name, kept for recognition
    """A step cannot take this input now (arroyo's MessageRejected): keep it, offer it again.
    `rest`, when set, is the part not taken (the step took the messages before it)."""

    def __init__(self, rest: list[Message] | None = None) -> None:
        super().__init__()
        self.rest = rest


class _BudgetFull(Exception):  # noqa: N818 - a signal inside Process.submit, never escapes it
    """An account just filled its budget: stop this consumed batch after `entry`'s message."""

    def __init__(self, entry: Entry) -> None:
        super().__init__()
        self.entry = entry


class ProcessingStep(Protocol[T_contra]):
    """One step of the chain. `submit` may raise MessageRejected; `poll` does periodic work and
    polls the next step; `join` finishes what the step holds within `timeout` (then joins the
    next); `close` releases it without waiting."""

    def submit(self, item: T_contra) -> None: ...
    def poll(self) -> None: ...
    def join(self, timeout: float) -> None: ...
    def close(self) -> None: ...


class Decoder(Protocol):
    def decode_message(self, value: bytes | None) -> dict[str, Any]: ...


class Deliverer(Protocol):
    def submit(self, batch: Batch) -> None: ...
    def results(self) -> list[BatchResult]: ...
    def in_flight(self) -> int: ...
    def close(self, timeout: float) -> list[Batch]: ...


class DeadLetterSink(Protocol):
    """Where failed messages go: `consumer.dlq.DeadLetters` (the DLQ topic), or a dry run's
    recorder. `on_written` (given at construction) finishes each message once it is safe."""

    def send(self, entry: Entry, failure: Failure) -> None: ...
    def poll(self) -> None: ...
    def pending(self) -> int: ...
    def flush(self, timeout: float) -> int: ...


class Holds(Protocol):
    """The source's per-partition holds and re-reads: a transient decode failure re-reads a
    partition later; a partition with too many offsets tracked is held until released; deferred
    messages are re-read by seeking their partition back (`rewind`, False if it could not)."""

    def hold(self, tp: TopicPartitionKey, offset: int, until: float) -> None: ...
    def is_held(self, tp: TopicPartitionKey) -> bool: ...
    def release_due(self, now: float) -> None: ...
    def release(self, tp: TopicPartitionKey) -> None: ...
    def rewind(self, tp: TopicPartitionKey, offset: int) -> bool: ...


# --- bookkeeping shared by the steps ------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """Per-batch counts: a labelled metric costs about a microsecond per update, which at tens
    of thousands of events a second is worth saving. Published once per loop turn."""

    consumed: Counter[str] = field(default_factory=Counter)
    consumed_bytes: Counter[str] = field(default_factory=Counter)
    decoded: Counter[str] = field(default_factory=Counter)
    transformed: Counter[str] = field(default_factory=Counter)
    filtered: Counter[tuple[str, str]] = field(default_factory=Counter)  # (destination, reason)
    fixes: Counter[tuple[str, str]] = field(default_factory=Counter)
    finished: Counter[str] = field(default_factory=Counter)

    def publish(self) -> None:
        for counts, metric in (
            (self.consumed, metrics.records_consumed),
            (self.consumed_bytes, metrics.consumed_bytes),
            (self.decoded, metrics.records_decoded),
            (self.transformed, metrics.records_transformed),
            (self.finished, metrics.records_finished),
        ):
            for label, n in counts.items():
                metric.labels(label).inc(n)
            counts.clear()
        for (destination, reason), n in self.filtered.items():
            metrics.events_filtered.labels(destination, reason).inc(n)
        self.filtered.clear()
        for (kind, action), n in self.fixes.items():
            metrics.transform_fixes.labels(kind, action).inc(n)
        self.fixes.clear()


class Ledger:
    """What every step records into: the offset tracker, the per-turn tally, the run's totals
    and the newest finished timestamp per partition. Owned by the pipeline, shared by its steps."""

    def __init__(self) -> None:
        self.tracker = OffsetTracker()
        self.tally = Tally()
        self.stats: Counter[str] = Counter()
        self.newest: dict[TopicPartitionKey, int] = {}

    def finish(self, entry: Entry, outcome: str = "dead_lettered") -> None:
        """The message is done (`outcome`: one of metrics.FINISH_OUTCOMES)."""
        self.finish_many((entry,), outcome)

    def finish_many(self, entries: Iterable[Entry], outcome: str) -> None:
        """`finish` for each of `entries` (a delivery result's messages), counted once."""
        n = self.tracker.finish_many(entries, self.newest)
        if n:
            self.stats[outcome] += n
            self.tally.finished[outcome] += n

    def publish(self) -> None:
        """Per-message counts reach Prometheus once per loop turn, not once per message."""
        self.stats["consumed"] += sum(self.tally.consumed.values())
        self.tally.publish()
        for (topic, partition), ts_ms in self.newest.items():
            metrics.last_processed_timestamp.labels(topic, str(partition)).set(ts_ms / 1000)
        metrics.in_flight_records.set(self.tracker.in_flight_records)
        metrics.in_flight_bytes.set(self.tracker.in_flight_bytes)

    def forget(self, partitions: Iterable[TopicPartitionKey]) -> None:
        self.publish()  # flush what these partitions finished before their series go away
        for tp in partitions:
            self.newest.pop(tp, None)


# --- policies around the chain -------------------------------------------------------------------


class CommitPolicy(Protocol):
    """Where commit points go: the group's offsets (`Source.commit`), or nowhere (dry run)."""

    def commit(self, points: dict[TopicPartitionKey, CommitPoint]) -> None: ...


class NoCommits:
    """A dry run leaves no offsets behind (and no consumer group)."""

    def commit(self, points: dict[TopicPartitionKey, CommitPoint]) -> None:
        del points


class StopPolicy(Protocol):
    """When the chain is done, and which consumed messages belong to the run."""

    def admit(self, messages: list[Message]) -> list[Message]: ...
    def done(self, idle: bool) -> bool: ...


class RunUntilStopped:
    """The service: every message, until SIGTERM."""

    def admit(self, messages: list[Message]) -> list[Message]:
        return messages

    def done(self, idle: bool) -> bool:
        del idle
        return False


class ReplayRange:
    """A replay: the messages below `until` per partition; done once every partition reached
    its end and nothing is in flight. One filter per consumed batch, nothing per record."""

    def __init__(self, start: dict[TopicPartitionKey, int], until: dict[TopicPartitionKey, int]) -> None:
        self.until = until
        self.position = dict(start)
        self.total = sum(until[tp] - o for tp, o in start.items())

    def admit(self, messages: list[Message]) -> list[Message]:
        until, position = self.until, self.position
        kept = []
        for m in messages:
            tp = (m.topic() or "", m.partition() or 0)
            offset = m.offset() or 0
            position[tp] = offset + 1
            if offset < until.get(tp, 0):
                kept.append(m)
        return kept

    def done(self, idle: bool) -> bool:
        return idle and all(self.position.get(tp, 0) >= end for tp, end in self.until.items())


# --- the steps -----------------------------------------------------------------------------------


class Commit:
    """The last step: commit points of what finished, through the policy, as soon as something
    finished, and at most once every `every` seconds (COMMIT_INTERVAL_MS, default
    COMMIT_EVERY_S). A commit point is cheap (a slice of the partition's done-bits), so the
    interval only coalesces the replies of one turn into one commit request."""

    def __init__(
        self,
        ledger: Ledger,
        policy: CommitPolicy,
        metadata_limit: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
        every: float = COMMIT_EVERY_S,
    ) -> None:
        self._ledger = ledger
        self._policy = policy
        self._limit = metadata_limit
        self._clock = clock
        self._every = every
        self._next = 0.0

    def submit(self, item: None) -> None:
        del item

    def poll(self) -> None:
        tracker = self._ledger.tracker
        if not tracker.dirty:
            return  # nothing finished: the next completion is committed at once
        now = self._clock()
        if now >= self._next:
            self._next = now + self._every
            self._policy.commit(tracker.take_commits(self._limit()))

    def due_in(self) -> float | None:
        """Seconds until a commit held back by the interval may go (0 when it may go now), or
        None when nothing waits. The poll loop waits no longer than this in `consume()`: a
        completion drained just after a commit must not sit uncommitted for a whole idle
        consume timeout (a kill -9 meanwhile repeats it)."""
        if not self._ledger.tracker.dirty:
            return None
        return max(0.0, self._next - self._clock())

    def commit(self, partitions: set[TopicPartitionKey]) -> None:
        """Commit these partitions now, with their offset maps (revocation, shutdown)."""
        self._policy.commit(self._ledger.tracker.commit_points(partitions, self._limit()))

    def join(self, timeout: float) -> None:
        del timeout
        self._policy.commit(self._ledger.tracker.take_commits(self._limit()))

    def close(self) -> None:
        pass


class Deliver:
    """Hands batches to the deliverer; reads its results; a message whose records all came back
    is finished (delivered) or dead-lettered with its first failure."""

    def __init__(self, deliverer: Deliverer, dlq: DeadLetterSink, ledger: Ledger, next_step: Commit) -> None:
        self._deliverer = deliverer
        self._dlq = dlq
        self._ledger = ledger
        self.next = next_step

    def submit(self, batch: Batch) -> None:
        self._deliverer.submit(batch)

    def drain(self) -> None:
        """One pass over each result: the messages it completes are finished together."""
        dlq = self._dlq
        for result in self._deliverer.results():
            delivered = []
            for entry, outcome in zip(result.batch.entries, result.outcomes, strict=True):
                if entry.dropped:
                    continue
                if outcome is not None:
                    entry.fail(outcome)
                entry.outstanding -= 1
                if entry.outstanding == 0:
                    if entry.failures:
                        dlq.send(entry, entry.failures[0])
                    else:
                        delivered.append(entry)
            self._ledger.finish_many(delivered, "delivered")
        dlq.poll()

    def poll(self) -> None:
        self.drain()
        self.next.poll()

    def expecting(self) -> bool:
        """A delivery result or a DLQ acknowledgement is on its way."""
        return self._deliverer.in_flight() > 0 or self._dlq.pending() > 0

    def pending(self) -> bool:
        """Work that will finish if waited for (deferred placeholders will not: not counted)."""
        return bool(self._ledger.tracker.pending(deferred=False) or self._dlq.pending())

    def join(self, timeout: float) -> None:
        """Close the deliverer within `timeout` (what it could not send stays uncommitted),
        read its last results, flush the dead letters, then join the commit step."""
        deadline = time.monotonic() + timeout
        unfinished = self._deliverer.close(max(0.1, deadline - time.monotonic()))
        if unfinished:
            log.info("batches left unsent at shutdown", extra={"batches": len(unfinished)})
        self.drain()
        self._dlq.flush(max(0.1, deadline - time.monotonic()))
        self.next.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.next.close()


class Process:
    """Decode → route → consent gate → transform → batch, one consumed batch per `submit`.

    Admits messages into the offset tracker; rejects a whole consumed batch (MessageRejected)
    while the in-flight limits are reached, until the in-flight work fell to half of them.

    Each CleverTap account also has its own in-flight budget (`Budget`): a message routed to an
    account whose budget is full is *deferred* instead (a placeholder without payload in the
    tracker; the watermark waits for it, what finishes above it still goes into the offset map)
    so the partitions it shares with healthy accounts keep flowing. Once the account has room
    again its partitions are sought back to their lowest deferred offset; the re-read skips what
    was handled already (one lookup per message) and processes the deferred ones, in order. A
    partition with more than `max_tracked_per_partition` offsets held above its watermark is
    paused until that falls, so memory stays bounded even if an account never recovers.
    """

    def __init__(
        self,
        *,
        decoder: Decoder,
        router: Router,
        batcher: Batcher,
        dlq: DeadLetterSink,
        holds: Holds,
        ledger: Ledger,
        next_step: Deliver,
        max_in_flight_records: int,
        max_in_flight_bytes: int,
        max_in_flight_records_per_account: int | None = None,
        max_in_flight_bytes_per_account: int | None = None,
        max_tracked_per_partition: int = 20_000,
        only_destinations: frozenset[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._decoder = decoder
        self._router = router
        self._batcher = batcher
        self._dlq = dlq
        self._holds = holds
        self._ledger = ledger
        self.next = next_step
        self._max_records = max_in_flight_records
        self._max_bytes = max_in_flight_bytes
        self._account_records = max_in_flight_records_per_account or max(1, max_in_flight_records // 2)
        self._account_bytes = max_in_flight_bytes_per_account or max(1, max_in_flight_bytes // 2)
        self._max_tracked = max_tracked_per_partition
        self._only = only_destinations
        self._clock = clock
        self.saturated = False
        self.budgets: dict[str, Budget] = {}
        self._full: set[Budget] = set()
        self._capped: set[TopicPartitionKey] = set()  # held: too many offsets tracked
        # The last rewind per partition: to which offset, when, and where reading had got to then.
        self._sought: dict[TopicPartitionKey, tuple[int, float, int]] = {}
        self._reread_at: dict[TopicPartitionKey, int] = {}  # how far the re-read since it got
        self._gauges: dict[str, tuple[Any, Any]] = {}

    # -- backpressure ---------------------------------------------------------------------------

    def _admit(self) -> None:
        if self._full and any(not b.deferring for b in self._full):
            raise MessageRejected  # a full account that may drain soon: wait (see DEFER_AFTER_S)
        t = self._ledger.tracker
        if self.saturated:
            # What deferring accounts hold will not drain soon: resume once the rest fell to half
            # of what is left of the bound (else one stuck account could keep it paused forever).
            stuck_records = stuck_bytes = 0
            for b in self._full:
                if b.deferring:
                    stuck_records += b.records
                    stuck_bytes += b.bytes
            if (
                t.in_flight_records - stuck_records <= (self._max_records - stuck_records) // 2
                and t.in_flight_bytes - stuck_bytes <= (self._max_bytes - stuck_bytes) // 2
            ):
                self.saturated = False
                log.info("resuming consumption", extra={"in_flight_records": t.in_flight_records})
        elif t.in_flight_records >= self._max_records or t.in_flight_bytes >= self._max_bytes:
            self.saturated = True
            log.info("pausing consumption", extra={"in_flight_records": t.in_flight_records})
        if self.saturated:
            raise MessageRejected

    def _budget(self, account: str) -> Budget:
        budget = self.budgets[account] = Budget(account, self._account_records, self._account_bytes)
        return budget

    def _filled(self, budget: Budget, now: float, entry: Entry) -> None:
        budget.full = True
        budget.filled_at = now
        self._full.add(budget)
        if budget.slow:
            self._deferring(budget)
        else:
            raise _BudgetFull(entry)  # pause: the rest of the consumed batch waits (DEFER_AFTER_S)

    def _deferring(self, budget: Budget) -> None:
        budget.deferring = True
        log.warning(
            "account stays at its in-flight budget: its new messages are deferred (read again "
            "later) while other accounts flow",
            extra={"account": budget.account, "in_flight_records": budget.records},
        )

    def _defer(self, entry: Entry, budget: Budget) -> bool:
        """Defer `entry` if its account is full, or if an earlier message of the account waits
        in the same partition (order per account); False: process it now."""
        tp = (entry.topic, entry.partition)
        queue = budget.waiting.get(tp)
        offset = entry.offset
        if not budget.deferring and not (queue and queue[0] < offset):
            return False
        self._ledger.tracker.defer(entry, budget)
        if queue is None:
            queue = budget.waiting[tp] = deque()
        if not queue or queue[-1] < offset:
            queue.append(offset)
        else:  # a re-read message now routed to another account (reload): keep the order
            bisect.insort(queue, offset)
        return True

    def _reread(self, placeholder: Entry, m: Message, now: float) -> None:
        """A deferred message read again: processed if its account has room, else left waiting
        (the next rewind reads it again)."""
        budget = placeholder.budget
        if budget is None or budget.full:
            return
        tp = (placeholder.topic, placeholder.partition)
        value = m.value()
        try:
            message = self._decoder.decode_message(value)
        except DecodeError as exc:
            if exc.transient:
                metrics.decode_holds.labels(exc.reason).inc()
                self._holds.hold(tp, placeholder.offset, now + TRANSIENT_DECODE_BACKOFF_S)
                return
            self._undefer(placeholder, budget, m, value)
            metrics.decode_failures.labels(exc.reason).inc()
            self._reject(placeholder, Failure("decode", exc.reason, exc.message))
            return
        self._undefer(placeholder, budget, m, value)
        self._process(placeholder, message, now)

    def _undefer(self, entry: Entry, budget: Budget, m: Message, value: bytes | None) -> None:
        tp = (entry.topic, entry.partition)
        queue = budget.waiting[tp]
        if queue[0] == entry.offset:
            queue.popleft()
        else:
            queue.remove(entry.offset)
        if not queue:
            del budget.waiting[tp]
        _, ts = m.timestamp()
        self._ledger.tracker.undefer(entry, m.key(), value, message_headers(m), ts if ts > 0 else None)

    def _flow(self, now: float) -> None:
        """Once per turn: accounts with room again get their deferred messages re-read; the
        tracked-offsets cap holds and releases partitions."""
        tracker, holds = self._ledger.tracker, self._holds
        for budget in list(self._full):
            if budget.records <= budget.max_records // 2 and budget.bytes <= budget.max_bytes // 2:
                budget.full = False
                budget.slow = now - budget.filled_at >= DEFER_AFTER_S
                self._full.discard(budget)
                if budget.deferring:
                    budget.deferring = False
                    log.info(
                        "account has room again: re-reading its deferred messages",
                        extra={"account": budget.account, "deferred": budget.deferred()},
                    )
            elif not budget.deferring and now - budget.filled_at >= DEFER_AFTER_S:
                self._deferring(budget)
        due: dict[TopicPartitionKey, int] = {}
        for budget in self.budgets.values():
            if not budget.full and budget.waiting:
                for tp, queue in budget.waiting.items():
                    if tp not in due or queue[0] < due[tp]:
                        due[tp] = queue[0]
        for tp in list(self._capped):
            if tp in due or tracker.tracked(tp) <= self._max_tracked * 3 // 4:
                self._capped.discard(tp)
                holds.release(tp)
        for tp, offset in due.items():
            if holds.is_held(tp):
                continue  # a decode hold re-reads from its own offset first
            last = self._sought.get(tp)
            at = self._reread_at.get(tp, -1)
            if (
                last is not None
                and last[0] <= offset
                and at < offset
                and at < last[2] - 1
                and now - last[1] < REWIND_RETRY_S
            ):
                continue  # the re-read from there is on its way and has not passed `offset` yet
            if holds.rewind(tp, offset):
                self._sought[tp] = (offset, now, tracker.next_offset(tp) or 0)
                self._reread_at[tp] = -1
        for tp in tracker.over(self._max_tracked):
            if tp not in due and tp not in self._capped and not holds.is_held(tp):
                high = tracker.next_offset(tp)
                if high is not None:
                    self._capped.add(tp)
                    holds.hold(tp, high, math.inf)
                    log.warning(
                        "partition paused: too many offsets held above its watermark",
                        extra={"topic": tp[0], "partition": tp[1], "tracked": tracker.tracked(tp)},
                    )

    def forget(self, partitions: set[TopicPartitionKey]) -> None:
        """Partitions we no longer own: their deferred messages are their next owner's."""
        for budget in self.budgets.values():
            for tp in partitions:
                budget.waiting.pop(tp, None)
        self._capped -= partitions
        for tp in partitions:
            self._sought.pop(tp, None)
            self._reread_at.pop(tp, None)

    # -- the step -------------------------------------------------------------------------------

    def submit(self, messages: list[Message]) -> None:
        self._admit()
        now = self._clock()
        counts: dict[str, list[int]] = {}  # topic → [consumed, bytes, decoded], tallied per batch
        try:
            self._take(messages, now, counts)
        except _BudgetFull as full:
            e = full.entry
            at = next(
                i
                for i, m in enumerate(messages)
                if m.offset() == e.offset and m.partition() == e.partition and m.topic() == e.topic
            )
            if at + 1 < len(messages):  # else the next submit waits (`_admit`)
                raise MessageRejected(messages[at + 1 :]) from None
        finally:
            tally = self._ledger.tally
            for topic, (consumed, size, decoded) in counts.items():
                tally.consumed[topic] += consumed
                tally.consumed_bytes[topic] += size
                tally.decoded[topic] += decoded

    def _take(self, messages: list[Message], now: float, counts: dict[str, list[int]]) -> None:
        """One pass over a consumed slice. Messages come in runs of one partition (librdkafka
        hands out a fetch at a time), so the partition's hold, tally and tracker state are
        looked up once per run; a new offset above everything read (the usual case) needs no
        other lookup before it is decoded."""
        ledger = self._ledger
        tracker, holds, reread = ledger.tracker, self._holds, self._reread_at
        decode, register, process = self._decoder.decode_message, tracker.register, self._process
        topic: str | None = None
        partition: int | None = -1
        tp: TopicPartitionKey = ("", 0)
        held = False
        count = [0, 0, 0]
        part = None
        for m in messages:
            offset = m.offset() or 0
            if m.partition() != partition or m.topic() != topic:
                topic, partition = m.topic(), m.partition()
                tp = (topic or "", partition or 0)
                held = holds.is_held(tp)
                count = counts.setdefault(tp[0], [0, 0, 0])
                part = tracker.partition(tp)
            if held:
                continue  # re-read after the hold; never registered, never committed
            assert part is not None  # set with the run's first message
            if offset < part.high or part.skip:
                seen = tracker.seen(tp, offset)
                if seen is not None:
                    if seen is SEEN:
                        reread[tp] = offset
                        continue  # a re-read (rewind) of something handled already
                    if isinstance(seen, Entry):
                        reread[tp] = offset
                        self._reread(seen, m, now)
                        held = holds.is_held(tp)
                        continue
                    # The partition's previous owner finished it (its commit's offset map): count
                    # it towards the watermark, send nothing.
                    count[0] += 1
                    done = Entry(tp[0], tp[1], offset, None, None, NO_HEADERS, None)
                    register(done, part)
                    ledger.finish(done, "already_done")
                    continue
            count[0] += 1
            value = m.value()
            if value:
                count[1] += len(value)
            _, ts = m.timestamp()
            entry = Entry(
                tp[0],
                tp[1],
                offset,
                m.key(),
                value,
                message_headers(m) if m.headers() else NO_HEADERS,
                ts if ts > 0 else None,
            )
            try:
                message = decode(value)
            except DecodeError as exc:
                if exc.transient:
                    log.warning(
                        "decode failed, will retry",
                        extra={
                            "stage": "decode",
                            "topic": tp[0],
                            "partition": tp[1],
                            "offset": offset,
                            "reason": exc.reason,
                        },
                    )
                    metrics.decode_holds.labels(exc.reason).inc()
                    holds.hold(tp, offset, now + TRANSIENT_DECODE_BACKOFF_S)
                    held = True
                    continue
                register(entry, part)
                metrics.decode_failures.labels(exc.reason).inc()
                self._reject(entry, Failure("decode", exc.reason, exc.message))
                continue
            count[2] += 1
            register(entry, part)
            process(entry, message, now)

    def _process(self, entry: Entry, message: dict[str, Any], now: float) -> None:
        route = self._router.route(message, entry.headers, entry.topic)
        if isinstance(route, Failure):
            self._reject(entry, route)
            return
        entry.destination_id = route.destination_id
        tally, finish = self._ledger.tally, self._ledger.finish
        only = self._only
        if only is not None and route.destination_id not in only:
            tally.filtered[(route.destination_id, "not_replayed")] += 1
            finish(entry, "filtered")
            return
        reason = withheld(message, route.gate)
        if reason is not None:  # RudderStack's server drops these before its transformer too
            tally.filtered[(route.destination_id, reason)] += 1
            finish(entry, "filtered")
            return
        account = route.target.account_id
        budget = self.budgets.get(account) or self._budget(account)
        if (budget.deferring or budget.waiting) and self._defer(entry, budget):  # Budget.blocked, inline
            return
        try:
            result = route.transform(message, route.config)
        except Exception as exc:  # a bug must cost one message, never the consumer
            log.exception(
                "transform raised", extra={"stage": "transform", "destination": route.destination_id}
            )
            self._reject(entry, Failure("transform", "internal_error", f"{type(exc).__name__} in transform"))
            return
        if isinstance(result, Accepted):
            self._accept(entry, route, result, now, budget)
        elif isinstance(result, Filtered):
            tally.filtered[(route.destination_id, result.reason)] += 1
            finish(entry, "filtered")
        else:
            self._reject(entry, Failure("transform", result.reason, result.message))

    def _accept(self, entry: Entry, route: Route, result: Accepted, now: float, budget: Budget) -> None:
        tally = self._ledger.tally
        for fix in result.fixes:
            tally.fixes[(fix.kind, fix.action)] += 1
        records = result.records
        if not records:
            self._ledger.finish(entry, "filtered")
            return
        entry.budget = budget  # charged until the message finishes (OffsetTracker.finish)
        budget.records += 1
        budget.bytes += entry.size
        tally.transformed[route.destination_id] += len(records)
        entry.outstanding = len(records)
        for i, record in enumerate(records):
            try:
                closed = self._batcher.add(route.target, record, entry, now)
            except UnencodableRecordError as exc:  # records already batched still report back first
                entry.outstanding -= len(records) - i
                metrics.events_rejected.labels(exc.failure.stage, exc.failure.reason).inc()
                entry.fail(exc.failure)
                if entry.outstanding == 0:
                    self._dlq.send(entry, exc.failure)
                return
            for batch in closed:
                self.next.submit(batch)
        if (budget.records >= budget.max_records or budget.bytes >= budget.max_bytes) and not budget.full:
            self._filled(budget, now, entry)

    def _reject(self, entry: Entry, failure: Failure) -> None:
        metrics.events_rejected.labels(failure.stage, failure.reason).inc()
        entry.fail(failure)
        self._dlq.send(entry, failure)

    def flush(self) -> None:
        """Every open batch goes to the next step now (revocation, shutdown)."""
        for batch in self._batcher.flush():
            self.next.submit(batch)

    def discard(self, partitions: set[TopicPartitionKey]) -> None:
        self._batcher.discard(partitions)

    def pending(self) -> bool:
        return bool(self._batcher)

    def poll(self) -> None:
        now = self._clock()
        for batch in self._batcher.due(now):
            self.next.submit(batch)
        self.next.poll()
        self._holds.release_due(now)
        self._flow(now)
        self._publish()

    def _publish(self) -> None:
        gauges = self._gauges
        for account, budget in self.budgets.items():
            pair = gauges.get(account)
            if pair is None:
                pair = gauges[account] = (
                    metrics.account_in_flight_records.labels(account),
                    metrics.account_deferred_records.labels(account),
                )
            pair[0].set(budget.records)
            pair[1].set(budget.deferred() if budget.waiting else 0)

    def join(self, timeout: float) -> None:
        self.flush()
        self.next.join(timeout)

    def close(self) -> None:
        self.next.close()

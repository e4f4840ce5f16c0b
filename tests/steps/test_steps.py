"""The chain of steps (consumer.steps) with fakes at its ends: holds, backpressure, revocation
and shutdown order. The integration suite proves the same chain against Kafka and CleverTap;
these pin the orchestration rules that are hard to provoke there."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from consumer.batch import Batch, Batcher
from consumer.codec import DecodeError
from consumer.contracts import CommitPoint, Failure, TopicPartitionKey
from consumer.deliver import BatchResult
from consumer.destinations import parse_destinations
from consumer.offsets import Entry
from consumer.pipeline import Pipeline, PipelineOptions
from consumer.route import Router
from consumer.steps import COMMIT_EVERY_S, Commit, Deliver, Ledger, MessageRejected, Process, ReplayRange

TRANSIENT = b"registry-down"


class FakeMessage:
    """The parts of confluent_kafka.Message the chain reads."""

    def __init__(self, topic: str, partition: int, offset: int, value: bytes) -> None:
        self._t, self._p, self._o, self._v = topic, partition, offset, value

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes:
        return self._v

    def key(self) -> bytes | None:
        return None

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)


def track(user: str) -> bytes:
    return orjson.dumps(
        {
            "type": "track",
            "event": "Product Viewed",
            "userId": user,
            "messageId": f"m-{user}",
            "timestamp": "2026-12-01T10:00:00Z",
            "destinationId": "eu",
        }
    )


class FakeDecoder:
    def decode_message(self, value: bytes | None) -> dict[str, Any]:
        if value == TRANSIENT:
            raise DecodeError("registry_unavailable", "registry did not answer", transient=True)
        message: dict[str, Any] = orjson.loads(value or b"null")
        return message


class FakeDeliverer:
    """Keeps submitted batches until the test answers them."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.submitted: list[Batch] = []
        self.answers: list[BatchResult] = []

    def submit(self, batch: Batch) -> None:
        self.submitted.append(batch)

    def answer(self, batch: Batch) -> None:
        """CleverTap accepted every record of this one batch."""
        self.submitted.remove(batch)
        self.answers.append(BatchResult(batch, [None] * len(batch)))

    def answer_all(self, failure: Failure | None = None) -> None:
        for batch in self.submitted:
            self.answers.append(BatchResult(batch, [failure] * len(batch)))
        self.submitted.clear()

    def results(self) -> list[BatchResult]:
        out, self.answers = self.answers, []
        return out

    def in_flight(self) -> int:
        return len(self.submitted)

    def close(self, timeout: float) -> list[Batch]:
        """Like the real one: what was sent while closing reports back, the rest is returned."""
        self.log.append("deliverer.close")
        self.answer_all()
        return []


class FakeDeadLetters:
    def __init__(self, on_written: Any, log: list[str]) -> None:
        self.on_written = on_written
        self.log = log
        self.sent: list[tuple[Entry, Failure]] = []

    def send(self, entry: Entry, failure: Failure) -> None:
        self.sent.append((entry, failure))
        self.on_written(entry)

    def poll(self) -> None:
        pass

    def pending(self) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        self.log.append("dlq.flush")
        return 0


class FakeHolds:
    def __init__(self) -> None:
        self.held: dict[TopicPartitionKey, tuple[int, float]] = {}
        self.rewinds: list[tuple[TopicPartitionKey, int]] = []

    def hold(self, tp: TopicPartitionKey, offset: int, until: float) -> None:
        self.held[tp] = (offset, until)

    def is_held(self, tp: TopicPartitionKey) -> bool:
        return tp in self.held

    def release_due(self, now: float) -> None:
        self.held = {tp: h for tp, h in self.held.items() if h[1] > now}

    def release(self, tp: TopicPartitionKey) -> None:
        self.held.pop(tp, None)

    def rewind(self, tp: TopicPartitionKey, offset: int) -> bool:
        self.rewinds.append((tp, offset))
        return True


class RecordingCommits:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.points: dict[TopicPartitionKey, CommitPoint] = {}

    def commit(self, points: dict[TopicPartitionKey, CommitPoint]) -> None:
        if points:
            self.log.append("commit")
        self.points.update(points)


def router() -> Router:
    return Router.from_destinations(
        parse_destinations({"destinations": [{"id": "eu", "accountId": "ACC-1", "passcode": "secret-1"}]}),
        None,
    )


class Chain:
    """Process → Deliver → Commit with fakes at the ends and a clock the test moves. By default
    one account whose budget is the overall bound (so the overall bound rules), two records a
    batch."""

    def __init__(
        self,
        max_in_flight: int = 1000,
        *,
        routes: Router | None = None,
        deliverer: type[FakeDeliverer] = FakeDeliverer,
        batch_records: int = 2,
        per_account: int | None = None,
        max_tracked: int = 20_000,
    ) -> None:
        self.log: list[str] = []
        self.now = 0.0
        self.ledger = Ledger()
        self.deliverer = deliverer(self.log)
        self.dlq = FakeDeadLetters(self.ledger.finish, self.log)
        self.holds = FakeHolds()
        self.commits = RecordingCommits(self.log)
        self.commit = Commit(self.ledger, self.commits, lambda: 4096, lambda: self.now)
        self.deliver = Deliver(self.deliverer, self.dlq, self.ledger, self.commit)
        self.process = Process(
            decoder=FakeDecoder(),
            router=routes or router(),
            batcher=Batcher(batch_records, 1 << 20, 0.5),
            dlq=self.dlq,
            holds=self.holds,
            ledger=self.ledger,
            next_step=self.deliver,
            max_in_flight_records=max_in_flight,
            max_in_flight_bytes=1 << 30,
            max_in_flight_records_per_account=per_account or max_in_flight,
            max_tracked_per_partition=max_tracked,
            clock=lambda: self.now,
        )


def messages(partition: int, first: int, n: int) -> list[Any]:
    return [FakeMessage("events", partition, first + i, track(f"u{partition}-{first + i}")) for i in range(n)]


def test_delivered_messages_commit_past_them_in_the_last_step() -> None:
    c = Chain()
    c.process.submit(messages(0, 0, 3))
    assert [len(b) for b in c.deliverer.submitted] == [2]  # the third waits for linger
    c.now = 1.0
    c.process.poll()
    assert [len(b) for b in c.deliverer.submitted] == [2, 1]
    c.deliverer.answer_all()
    c.now = 2.0
    c.process.poll()
    assert c.commits.points[("events", 0)][0] == 3
    assert c.ledger.stats["delivered"] == 3


def test_a_finished_message_is_committed_at_once_and_commits_are_coalesced_per_interval() -> None:
    """A kill -9 repeats what finished and was not committed yet: the first completion after a
    quiet spell goes out in the same turn, however long since the last commit; completions
    within COMMIT_INTERVAL_MS of a commit wait for the next one, and `due_in` says how long;
    no completion, no commit."""
    c = Chain()
    c.process.submit(messages(0, 0, 6))  # three batches of two
    answered = list(c.deliverer.submitted)
    c.now = 10.0
    c.process.poll()
    assert c.log.count("commit") == 0, "nothing finished, nothing to commit"
    c.deliverer.answer(answered[0])
    c.process.poll()
    assert (c.log.count("commit"), c.commits.points[("events", 0)][0]) == (1, 2)
    c.now += COMMIT_EVERY_S / 2
    c.deliverer.answer(answered[1])
    c.process.poll()
    assert c.log.count("commit") == 1, "within the interval of the last commit: coalesced"
    # The poll loop waits in consume() no longer than this, so the held commit is not late.
    assert c.commit.due_in() == pytest.approx(COMMIT_EVERY_S / 2)
    c.now += COMMIT_EVERY_S / 2
    assert c.commit.due_in() == 0.0
    c.process.poll()
    assert (c.log.count("commit"), c.commits.points[("events", 0)][0]) == (2, 4)
    assert c.commit.due_in() is None, "nothing finished since: nothing to wait for"
    c.now += 60.0
    c.process.poll()
    assert c.log.count("commit") == 2
    c.deliverer.answer(answered[2])
    c.process.poll()
    assert (c.log.count("commit"), c.commits.points[("events", 0)][0]) == (3, 6)


def test_a_transient_decode_failure_holds_the_partition_and_commits_nothing_past_it() -> None:
    c = Chain()
    batch = [
        *messages(0, 0, 1),
        FakeMessage("events", 0, 1, TRANSIENT),
        *messages(0, 2, 2),
        *messages(1, 0, 1),
    ]
    c.process.submit(batch)
    assert c.holds.held == {("events", 0): (1, 5.0)}
    # offsets 2 and 3 of the held partition were skipped: re-read after the hold, never registered
    assert c.ledger.tracker.pending({("events", 0)}) == 1
    assert c.ledger.tracker.pending({("events", 1)}) == 1
    c.process.join(1.0)
    c.deliverer.answer_all()
    c.deliver.drain()
    c.now = 1.0
    c.commit.poll()
    assert c.commits.points[("events", 0)][0] == 1  # stops before the held offset
    c.now = 6.0
    c.process.poll()
    assert not c.holds.held


def test_backpressure_is_a_rejection_until_in_flight_work_halves() -> None:
    c = Chain(max_in_flight=4)
    c.process.submit(messages(0, 0, 4))
    with pytest.raises(MessageRejected):
        c.process.submit(messages(0, 4, 1))
    assert c.ledger.tracker.pending() == 4  # the rejected batch was not admitted at all
    c.deliverer.answer_all()
    c.process.poll()
    c.process.submit(messages(0, 4, 1))
    assert c.ledger.tracker.pending() == 1


def test_failed_records_dead_letter_their_message_once() -> None:
    c = Chain()
    c.process.submit(messages(0, 0, 2))
    c.deliverer.answer_all(Failure("deliver", "rejected", "bad record", 512))
    c.deliver.drain()
    assert [(e.offset, f.reason) for e, f in c.dlq.sent] == [(0, "rejected"), (1, "rejected")]
    assert c.ledger.tracker.pending() == 0


def test_replay_range_admits_below_the_end_and_is_done_only_when_idle() -> None:
    policy = ReplayRange({("events", 0): 0}, {("events", 0): 2})
    assert policy.total == 2
    kept = policy.admit(messages(0, 0, 3))
    assert [m.offset() for m in kept] == [0, 1]
    assert not policy.done(idle=False)
    assert policy.done(idle=True)


def _pipeline(log: list[str], deliverer: FakeDeliverer) -> tuple[Pipeline, RecordingCommits]:
    commits = RecordingCommits(log)
    letters: list[FakeDeadLetters] = []

    def dead_letters(finish: Any) -> FakeDeadLetters:
        letters.append(FakeDeadLetters(finish, log))
        return letters[0]

    options = PipelineOptions(
        topics=("events",),
        group_id="g",
        dlq_topic="dlq",
        batch_max_records=2,
        drain_timeout_s=0.5,
        revoke_timeout_s=0.3,
    )
    pipeline = Pipeline(
        options,
        consumer_conf={"bootstrap.servers": "127.0.0.1:9", "group.id": "g"},
        producer=Producer({"bootstrap.servers": "127.0.0.1:9"}),
        decoder=FakeDecoder(),
        router=router(),
        deliverer=deliverer,
        dead_letters=dead_letters,
        commits=commits,
    )
    return pipeline, commits


def test_revoke_flushes_open_batches_commits_what_finished_and_lets_the_rest_go() -> None:
    log: list[str] = []
    deliverer = FakeDeliverer(log)
    pipeline, commits = _pipeline(log, deliverer)
    pipeline._offer(messages(0, 0, 3))
    # A batch of 2 was submitted; the third record sits in the open batch until revocation.
    assert [len(b) for b in deliverer.submitted] == [2]
    first = deliverer.submitted.pop(0)
    deliverer.answers.append(BatchResult(first, [None, None]))
    released = pipeline.revoked({("events", 0)})
    assert released == {}
    assert [len(b) for b in deliverer.submitted] == [1]  # flushed on revocation
    assert commits.points[("events", 0)][0] == 2  # what finished is committed before letting go
    # results that arrive for the let-go message are ignored (its new owner re-reads it)
    deliverer.answer_all()
    pipeline._deliver.drain()
    assert pipeline.stats["delivered"] == 2


def test_shutdown_closes_the_deliverer_then_flushes_dead_letters_then_commits() -> None:
    log: list[str] = []
    deliverer = FakeDeliverer(log)
    pipeline, _ = _pipeline(log, deliverer)
    pipeline._offer(messages(0, 0, 2))  # in flight until the deliverer closes
    pipeline._shutdown()
    assert log == ["deliverer.close", "dlq.flush", "commit"]
    assert pipeline.stats["delivered"] == 2


def test_a_rejected_batch_emptied_by_revocation_still_resumes_the_source() -> None:
    log: list[str] = []
    deliverer = FakeDeliverer(log)
    pipeline, _ = _pipeline(log, deliverer)
    pipeline._process._max_records = 2  # a small in-flight bound
    pipeline._offer(messages(0, 0, 2))
    pipeline._offer(messages(0, 2, 2))  # rejected: carried, source paused
    assert pipeline._source.paused
    pipeline.revoked({("events", 0)})  # takes the in-flight work and the carried batch
    pipeline.step()
    assert not pipeline._source.paused

"""The poll thread's own cost: the chain of steps (consumer.steps) on real Kafka `Message`s, with
Kafka and HTTP taken out, beside the bare decode of the same values.

`bench/e2e.py` measures the whole service against the bare consume+decode loop, but on this
shared 2-core machine its numbers move by ±5 µs per event from run to run (the broker and the
fake CleverTap compete for the cores). This one runs in a single process, on one core, with no
I/O: the real decoder, router, consent gate, transform, batcher, offset tracker and commit
step, fed confluent-kafka `Message` objects built in memory, and a deliverer that accepts every
batch at once. What it prints per event (CPU µs, best and median of interleaved rounds):

  (a) bare: our decoder's fastavro read + orjson of the JSON fields (the e2e bare loop's decode)
  (b) chain: Process.submit → Deliver → Commit, everything the poll thread does per event
      except `consume()` and the delivery thread's HTTP

    python bench/chain.py [--events 20000] [--rounds 5] [--corpus FILE]

Prints numbers, asserts nothing. Garbage collection runs as in the service (`tune_gc`).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Message

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _corpus import bench_destinations, load_corpus  # noqa: E402

from consumer.batch import Batch, Batcher  # noqa: E402
from consumer.codec import Decoder, Encoder  # noqa: E402
from consumer.codec.schema import EXTRA_FIELD, JSON_FIELDS  # noqa: E402
from consumer.contracts import CommitPoint, Failure, TopicPartitionKey  # noqa: E402
from consumer.deliver import BatchResult  # noqa: E402
from consumer.destinations import parse_destinations  # noqa: E402
from consumer.offsets import Entry  # noqa: E402
from consumer.route import Router  # noqa: E402
from consumer.service import tune_gc  # noqa: E402
from consumer.steps import Commit, Deliver, Ledger, Process  # noqa: E402

PARTITIONS = 12
CONSUMED = 1000  # messages per consume() (PipelineOptions.poll_records)
SLICE = 100  # messages per submit (pipeline.OFFER_SLICE)


class Accepting:
    """A deliverer whose CleverTap accepts every record: results come back on the next turn."""

    def __init__(self) -> None:
        self.sent: list[Batch] = []

    def submit(self, batch: Batch) -> None:
        self.sent.append(batch)

    def results(self) -> list[BatchResult]:
        out = [BatchResult(b, [None] * len(b)) for b in self.sent]
        self.sent = []
        return out

    def in_flight(self) -> int:
        return len(self.sent)

    def close(self, timeout: float) -> list[Batch]:
        return []


class NoDeadLetters:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.sent = 0

    def send(self, entry: Entry, failure: Failure) -> None:
        self.sent += 1
        self.ledger.finish(entry)

    def poll(self) -> None:
        pass

    def pending(self) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


class NoHolds:
    def hold(self, tp: TopicPartitionKey, offset: int, until: float) -> None:
        raise AssertionError("no decode failure is expected here")

    def is_held(self, tp: TopicPartitionKey) -> bool:
        return False

    def release_due(self, now: float) -> None:
        pass

    def release(self, tp: TopicPartitionKey) -> None:
        pass

    def rewind(self, tp: TopicPartitionKey, offset: int) -> bool:
        return False


class Commits:
    def __init__(self) -> None:
        self.points = 0

    def commit(self, points: dict[TopicPartitionKey, CommitPoint]) -> None:
        self.points += len(points)


def router(events: list[dict[str, Any]]) -> Router:
    return Router.from_destinations(parse_destinations({"destinations": bench_destinations(events)}), None)


def kafka_messages(events: list[dict[str, Any]], round_: int) -> list[Message]:
    """The corpus as consumed: keyed by user, spread over partitions by key, runs of one
    partition per fetch as librdkafka hands them out; offsets continue from round to round."""
    encoder = Encoder()
    by_partition: list[list[tuple[bytes | None, bytes]]] = [[] for _ in range(PARTITIONS)]
    for e in events:
        key = e.get("userId") or e.get("anonymousId")
        k = str(key).encode() if key else None
        by_partition[hash(k) % PARTITIONS].append((k, encoder.encode(e)))
    base = round_ * len(events)
    out: list[Message] = []
    cursors = [0] * PARTITIONS
    while len(out) < len(events):
        for p in range(PARTITIONS):
            run = by_partition[p][cursors[p] : cursors[p] + 50]
            for i, (k, v) in enumerate(run):
                out.append(
                    Message(
                        topic="events",
                        partition=p,
                        offset=base + cursors[p] + i,
                        key=k,
                        value=v,
                        timestamp=(1, 1_790_000_000_000),
                    )
                )
            cursors[p] += len(run)
    return out


def chain_pass(routes: Router, batch: list[Message]) -> Callable[[], None]:
    ledger = Ledger()
    dlq = NoDeadLetters(ledger)
    commit = Commit(ledger, Commits(), lambda: 4096)
    deliver = Deliver(Accepting(), dlq, ledger, commit)
    process = Process(
        decoder=Decoder(),
        router=routes,
        batcher=Batcher(1000, 4 * 1024 * 1024, 0.2),
        dlq=dlq,
        holds=NoHolds(),
        ledger=ledger,
        next_step=deliver,
        max_in_flight_records=10**9,
        max_in_flight_bytes=1 << 40,
    )

    def run() -> None:
        for start in range(0, len(batch), CONSUMED):
            consumed = batch[start : start + CONSUMED]
            for s in range(0, len(consumed), SLICE):
                process.submit(consumed[s : s + SLICE])
                process.poll()
            ledger.publish()
        process.join(1.0)
        if dlq.sent:
            raise SystemExit(f"{dlq.sent} events dead-lettered: the corpus or the routes are wrong")

    return run


def bare_pass(batch: list[Message]) -> Callable[[], None]:
    decode, loads, fields = Decoder().decode, orjson.loads, (*JSON_FIELDS, EXTRA_FIELD)

    def run() -> None:
        for m in batch:
            envelope = decode(m.value())
            for key in fields:
                text = envelope.get(key)
                if text:
                    loads(text)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--corpus", type=Path)
    args = parser.parse_args()
    source, events = load_corpus(args.corpus, args.events, destinations=[f"dest-{i}" for i in range(8)])
    events = events[: args.events]
    routes = router(events)
    tune_gc()
    print(f"corpus: {source}: {len(events)} events")
    times: dict[str, list[float]] = {"bare": [], "chain": []}
    for r in range(args.rounds):
        batch = kafka_messages(events, r)
        for name, run in (("bare", bare_pass(batch)), ("chain", chain_pass(routes, batch))):
            started = time.process_time()
            run()
            times[name].append((time.process_time() - started) / len(batch) * 1e6)
        del batch
        gc.collect()
    for name, label in (("bare", "(a) bare decode"), ("chain", "(b) chain of steps")):
        t = times[name]
        print(f"  {label:24s} best {min(t):6.2f} µs/event   median {statistics.median(t):6.2f}")
    print(
        f"chain ÷ bare (medians): {statistics.median(times['chain']) / statistics.median(times['bare']):.2f}"
    )


if __name__ == "__main__":
    main()

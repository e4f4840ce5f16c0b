"""How much the decode stage adds over fastavro's schemaless reader alone (DESIGN: at most 10%).

Encodes a corpus in schemas/event.avsc, Confluent-framed (the schema registered in
confluent-kafka's in-memory registry client, so no network is timed), then measures on one core:

  (a) fastavro.schemaless_reader on the Avro bodies with the parsed schema, nothing else
  (b) Decoder.decode on the same records, framed: header check, schema-id lookup, reader, checks
  (c) Decoder.decode + to_message: the message the transform gets (JSON text fields parsed)
  (d) Decoder.decode_message: the same message as the service reads it (consumer.codec._reader's
      one pass over our own schema's bytes; fastavro only for other writer schemas and errors)

Each is run several times, interleaved, with the garbage collector paused, timed in CPU seconds
of this process; best and median records/s are printed, and the overhead of (b) over (a).
Prints numbers, asserts nothing.

    python bench/decode.py                       # corpus: ../shared/bench/gen_events.py 20000 if present
    python bench/decode.py --corpus events.jsonl # or any JSON-lines file
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro import schemaless_reader

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _corpus import GENERATOR, load_corpus  # noqa: E402

from consumer.codec import Decoder, Encoder, Registry, to_message  # noqa: E402
from consumer.codec.schema import PARSED  # noqa: E402


def pin_to_one_core(cpu: int | None) -> int:
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return chosen


def timed(loop: Callable[[], None], count: int) -> float:
    """Records per CPU second of one pass of `loop` over `count` records.

    CPU time of this process, not wall time: on a shared machine the wall clock also counts the
    time other processes held the core, which says nothing about this code.
    """
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        loop()
        elapsed = time.process_time() - started
    finally:
        gc.enable()
    return count / elapsed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, help="JSON-lines events to use instead of a generator")
    parser.add_argument("--generator", type=Path, default=GENERATOR, help="gen_events.py to run")
    parser.add_argument("--events", type=int, default=20000, help="how many events to generate")
    parser.add_argument("--rounds", type=int, default=7, help="timed passes per variant")
    parser.add_argument("--cpu", type=int, help="core to pin to (default: the last one allowed)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file (for bench/run.py)")
    args = parser.parse_args(argv)

    source, messages = load_corpus(args.corpus, args.events, args.generator)
    client = SchemaRegistryClient.new_client({"url": "mock://bench"})
    registry = Registry(client, "in-memory registry")
    encoder = Encoder(registry, "bench")
    values = [encoder.encode(m) for m in messages]
    bodies = [v[5:] for v in values]
    decoder = Decoder(registry)
    for value, message in zip(values[:1000], messages[:1000], strict=True):  # warm the schema cache; sanity
        assert to_message(decoder.decode(value)) == decoder.decode_message(value) == message
    cpu = pin_to_one_core(args.cpu)

    def reader_alone() -> None:
        for body in bodies:
            schemaless_reader(io.BytesIO(body), PARSED)

    def decode() -> None:
        for value in values:
            decoder.decode(value)

    def decode_to_message() -> None:
        for value in values:
            to_message(decoder.decode(value))

    def decode_message() -> None:
        for value in values:
            decoder.decode_message(value)

    variants = {
        "(a) fastavro schemaless_reader alone": reader_alone,
        "(b) Decoder.decode (Confluent-framed)": decode,
        "(c) Decoder.decode + to_message": decode_to_message,
        "(d) Decoder.decode_message": decode_message,
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, loop in variants.items():
            results[name].append(timed(loop, len(values)))

    print(f"corpus: {source}: {len(values)} events")
    print(
        f"encoded size: {sum(map(len, values)) / len(values):.1f} bytes framed on average"
        f" ({sum(map(len, bodies)) / len(bodies):.1f} bytes of Avro body)"
    )
    print(f"one core (cpu {cpu}), {args.rounds} rounds each, records per CPU second:")
    for name, rates in results.items():
        print(f"  {name:<40} best {max(rates):>9,.0f}   median {statistics.median(rates):>9,.0f}")
    a, b = results["(a) fastavro schemaless_reader alone"], results["(b) Decoder.decode (Confluent-framed)"]
    print(
        f"overhead of (b) over (a): {max(a) / max(b) - 1:+.1%} by best,"
        f" {statistics.median(a) / statistics.median(b) - 1:+.1%} by median (target: at most +10%)"
    )
    if args.json is not None:
        keys = {"(a)": "fastavro_alone", "(b)": "decode", "(c)": "decode_to_message", "(d)": "decode_message"}
        numbers = {
            "events": len(values),
            "rounds": args.rounds,
            "cpu": cpu,
            **{f"{keys[name[:3]]}_per_cpu_s_median": statistics.median(r) for name, r in results.items()},
            **{f"{keys[name[:3]]}_per_cpu_s_best": max(r) for name, r in results.items()},
            "overhead_median": statistics.median(a) / statistics.median(b) - 1,
            "overhead_best": max(a) / max(b) - 1,
        }
        args.json.write_bytes(orjson.dumps(numbers, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()

"""End-to-end benchmark: one service process, real Kafka, the fake CleverTap on loopback.

Prints, for the same topic in the same run:
  * the rate of a bare consume + decode loop (confluent-kafka consume(), our Avro decoder, and
    orjson.loads of each JSON text field: the issue's definition of the bare loop), run once
    before the service and once after it on the same records; its CPU per record is the mean
    of the two, since this shared machine's speed drifts within a run (both are printed),
  * the service's rate (consume → decode → route → transform → batch → HTTP → commit),
  * their ratio (design target ≥ 0.6), and the service's peak RSS,
  * with --latency: p50/p99 event-to-delivery latency while producing at half the measured rate.

    python bench/e2e.py [--events 200000] [--corpus FILE] [--latency] [--json FILE] [--workers 1,2]

--json FILE also writes the numbers printed as one JSON object (what bench/run.py collects).
--workers N runs the service with WORKERS=N (its CPU is the whole process tree's); a list
measures each count in turn, each on a fresh topic after its own bare loop, and ends with one
line per count comparing it with the first (events/s ratio, CPU µs per event); --json then
writes `{"runs": [...]}`.

The corpus defaults to `python ../shared/bench/gen_events.py N` when that script exists, else our
own sample events. Rates are measured from the first to the last finished record, so process
start-up and the group join are not counted. This machine has 2 cores shared by the broker, the
fake CleverTap and the service: treat the numbers as relative anchors.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _corpus import bench_destinations, load_corpus  # noqa: E402

from consumer.codec import Decoder, Encoder  # noqa: E402
from consumer.codec.schema import EXTRA_FIELD, JSON_FIELDS  # noqa: E402
from dev import kafka_local  # noqa: E402
from dev.demo import Samples, quantile, scrape, start_fake, total  # noqa: E402

PARTITIONS = 12


def corpus(n: int, path: Path | None) -> list[dict[str, Any]]:
    return load_corpus(path, n, destinations=[f"dest-{i}" for i in range(8)])[1][:n]


def destinations_file(events: list[dict[str, Any]], folder: Path) -> Path:
    path = folder / "destinations.json"
    path.write_bytes(orjson.dumps({"destinations": bench_destinations(events)}))
    return path


def produce(bootstrap: str, topic: str, events: list[dict[str, Any]], rate: float | None = None) -> None:
    encoder = Encoder()
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all", "batch.size": 1_000_000}
    )
    start = time.monotonic()
    for i, e in enumerate(events):
        key = e.get("userId") or e.get("anonymousId")
        while True:
            try:
                producer.produce(topic, encoder.encode(e), str(key).encode() if key else None)
                break
            except BufferError:
                producer.poll(0.01)
        if rate is not None and i % 100 == 0:
            ahead = i / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
            producer.poll(0)
    producer.flush(120)


def bare_loop(bootstrap: str, topic: str, total: int) -> tuple[float, float]:
    """(records/s, CPU µs per record) of consume + decode only, from the first record to the
    last: fastavro's read of the envelope and orjson.loads of its JSON text fields (issue 11's
    bare loop; no message is built). CPU is the whole process's (librdkafka's threads
    included), as for the service."""
    decoder = Decoder()
    loads, json_fields = orjson.loads, (*JSON_FIELDS, EXTRA_FIELD)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-bare-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "queued.max.messages.kbytes": 32768,
        }
    )
    consumer.subscribe([topic])
    seen, first, cpu0 = 0, 0.0, 0.0
    while seen < total:
        for m in consumer.consume(1000, 0.5):
            if m.error() is None:
                if not seen:
                    first = time.perf_counter()
                    cpu0 = time.process_time()
                envelope = decoder.decode(m.value())
                for key in json_fields:
                    text = envelope.get(key)
                    if text:
                        loads(text)
                seen += 1
    elapsed = time.perf_counter() - first
    cpu = time.process_time() - cpu0
    consumer.close()
    return total / elapsed, cpu / total * 1e6


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (WORKERS > 1: the supervisor and its worker processes)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                continue
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(parents.get(p, ()))
    return tree


def cpu_seconds(pid: int, *, tree: bool = True) -> float:
    """User + system CPU of a process and (`tree`) its descendants (every thread), from /proc."""
    ticks = 0
    for p in process_tree(pid) if tree else [pid]:
        try:
            fields = _stat(p)
        except OSError:  # exited meanwhile
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def finished(s: Samples) -> float:
    return total(s, "clevertap_consumer_records_finished_total")


def rss_peak_mb(pid: int) -> float:
    """Peak RSS of the process, plus its descendants' (each one's own peak: an upper bound)."""
    kib = 0
    for p in process_tree(pid):
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError:
            continue
        kib += next((int(line.split()[1]) for line in lines if line.startswith("VmHWM:")), 0)
    return kib / 1024 if kib else float("nan")


class Service:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = int(env["METRICS_PORT"])
        with log.open("wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "consumer", "run"], env=env, stdout=fh, stderr=fh
            )
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.supervisor_cpu_us = float("nan")

    def metrics(self) -> Samples:
        return scrape(self.url)

    def wait_finished(self, total: int, timeout: float = 900) -> tuple[float, float, float]:
        """(first, last) perf_counter times at which records were seen finished, and the
        service's CPU µs per record finished between them."""
        first = last = cpu0 = done0 = own0 = 0.0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"service exited with {self.proc.returncode}")
            try:
                done = finished(self.metrics())
            except httpx.HTTPError:
                done = 0
            now = time.perf_counter()
            if done and not first:
                first, done0 = now, done
                cpu0 = cpu_seconds(self.proc.pid)
                own0 = cpu_seconds(self.proc.pid, tree=False)
            if done >= total:
                last = now
                if done == done0:  # all finished before the first look: no window to divide by
                    return first, last, float("nan")
                own = cpu_seconds(self.proc.pid, tree=False) - own0  # the supervisor, WORKERS > 1
                self.supervisor_cpu_us = own / (done - done0) * 1e6
                return first, last, (cpu_seconds(self.proc.pid) - cpu0) / (done - done0) * 1e6
            # Each scrape costs the service CPU (a few per cent of it at ten a second, which a
            # real Prometheus never asks for): look once a second while the end is far, ten
            # times a second near it, so the end time stays as exact as before.
            pace = 0.1
            if first and done > done0:
                left = (total - done) * (now - first) / (done - done0)
                pace = min(1.0, max(0.1, left / 2))
            time.sleep(pace)
        raise SystemExit("timed out waiting for the service")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Print the numbers, and return them (the same ones) for --json."""
    numbers: dict[str, Any] = {"workers": getattr(args, "workers", 1)}
    bootstrap = kafka_local.up()
    events = corpus(args.events, args.corpus)
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, parts in ((topic, PARTITIONS), (f"{topic}-dlq", 1)):
        admin.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1)])[name].result(30)
    print(f"corpus: {len(events)} events; topic {topic} ({PARTITIONS} partitions); broker {bootstrap}")
    produce(bootstrap, topic, events)

    bare, bare_cpu = bare_loop(bootstrap, topic, len(events))
    print(f"bare consume+decode loop: {bare:,.0f} records/s, {bare_cpu:.1f} µs CPU/record")
    numbers.update(events=len(events), bare_records_per_s=bare, bare_cpu_us_per_record=bare_cpu)

    fake, fake_url = start_fake()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPICS": topic,
        "KAFKA_GROUP_ID": f"bench-{uuid.uuid4().hex[:6]}",
        "DESTINATIONS_FILE": str(destinations_file(events, work)),
        "CLEVERTAP_BASE_URL": fake_url,
        "DLQ_TOPIC": f"{topic}-dlq",
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": str(kafka_local.free_port()),
        "LOG_FORMAT": "json",
        "WORKERS": str(args.workers),
    }
    print(f"workers: {args.workers}")
    service = Service(env, work / "service.log")
    spy = None
    if args.py_spy is not None:  # where the service's CPU goes: collapsed stacks of the GIL holder
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(service.proc.pid),
                "--format",
                "raw",
                "--rate",
                "250",
                "--nonblocking",
                "--gil",
                *(["--subprocesses"] if args.workers > 1 else []),
                "--output",
                str(args.py_spy),
            ],
            stdout=subprocess.DEVNULL,
        )
    try:
        first, last, service_cpu = service.wait_finished(len(events))
        rate = len(events) / (last - first)
        m = service.metrics()
        rss = rss_peak_mb(service.proc.pid)
        _, bare_after = bare_loop(bootstrap, topic, len(events))
        print(
            f"bare loop again, after the service: {bare_after:.1f} µs CPU/record;"
            f" the mean of both, {(bare_cpu + bare_after) / 2:.1f} µs, is the bare loop's cost below"
        )
        numbers.update(bare_cpu_us_per_record_before=bare_cpu, bare_cpu_us_per_record_after=bare_after)
        bare_cpu = (bare_cpu + bare_after) / 2
        numbers["bare_cpu_us_per_record"] = bare_cpu
        print(f"service: {rate:,.0f} events/s ({len(events)} in {last - first:.1f} s)")
        print(f"ratio service / bare loop: {rate / bare:.2f}")
        print(f"service CPU per event: {service_cpu:.1f} µs (bare loop {bare_cpu:.1f} µs)")
        if args.workers > 1:  # the supervisor merges the workers' metric files on every scrape
            print(
                f"of which the supervisor: {service.supervisor_cpu_us:.1f} µs"
                " (merging the workers' metric files for each of this benchmark's scrapes)"
            )
            numbers["supervisor_cpu_us_per_event"] = service.supervisor_cpu_us
        print(
            f"efficiency (bare CPU/event ÷ service CPU/event): {bare_cpu / service_cpu:.2f}  (target ≥ 0.5)"
        )
        print(f"service peak RSS: {rss:.0f} MiB")
        delivered = total(m, "clevertap_consumer_records_delivered_total")
        dead = total(m, "clevertap_consumer_dlq_records_total")
        requests = total(m, "clevertap_consumer_http_request_duration_seconds_count")
        print(
            f"CleverTap records delivered: {delivered:,.0f} in {requests:,.0f} requests"
            f" ({delivered / max(requests, 1):,.0f} a request); dead-lettered events: {dead:,.0f}"
        )
        numbers.update(
            service_events_per_s=rate,
            service_cpu_us_per_event=service_cpu,
            efficiency=bare_cpu / service_cpu,
            peak_rss_mib=rss,
            delivered_records=delivered,
            requests=requests,
            dead_lettered=dead,
        )
        if args.latency:
            numbers["latency"] = latency(
                bootstrap, topic, events, rate / 2, service, seconds=args.latency_seconds
            )
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        print(f"service exit status: {service.stop()}")
        fake.terminate()
        fake.wait(10)
    return numbers


def latency(
    bootstrap: str,
    topic: str,
    events: list[dict[str, Any]],
    rate: float,
    service: Service,
    *,
    seconds: float = 30,
) -> dict[str, Any]:
    """Produce at `rate` events/s for ~`seconds` while the service keeps up; read its latency histogram."""
    n = min(len(events), int(rate * seconds))
    before = service.metrics()
    producer = threading.Thread(target=produce, args=(bootstrap, topic, events[:n], rate))
    producer.start()
    producer.join()
    target = finished(before) + n
    service.wait_finished(int(target))
    after = service.metrics()
    name = "clevertap_consumer_end_to_end_latency_seconds"
    delta = {k: v - before.get(k, 0) for k, v in after.items() if k[0] == f"{name}_bucket"}
    p50, p99 = quantile(delta, name, 0.5), quantile(delta, name, 0.99)
    print(
        f"at half load ({rate:,.0f} events/s for {n / rate:.0f} s): end-to-end latency "
        f"p50 ≤ {p50} s, p99 ≤ {p99} s (histogram bucket bounds)"
    )
    return {"rate_events_per_s": rate, "seconds": n / rate, "p50_le_s": p50, "p99_le_s": p99}


def worker_counts(text: str) -> list[int]:
    counts = [int(n) for n in text.split(",") if n.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("one or more worker counts ≥ 1, e.g. 2 or 1,2")
    return counts


def scaling(runs: list[dict[str, Any]]) -> None:
    """--workers 1,2 (or 1,2,1,2): each count against the first, from the same invocation (same
    machine load); with repeats, the means of each count's runs."""
    by: dict[int, list[dict[str, Any]]] = {}
    for r in runs:
        by.setdefault(r["workers"], []).append(r)

    def mean(rs: list[dict[str, Any]], key: str) -> float:
        return float(sum(r[key] for r in rs)) / len(rs)

    base_n, *others = by
    base = by[base_n]
    for n in others:
        rs = by[n]
        rate, base_rate = mean(rs, "service_events_per_s"), mean(base, "service_events_per_s")
        cpu, base_cpu = mean(rs, "service_cpu_us_per_event"), mean(base, "service_cpu_us_per_event")
        runs_note = f" (means of {len(rs)} and {len(base)} runs)" if len(rs) + len(base) > 2 else ""
        print(
            f"workers {n} vs {base_n}: {rate / base_rate:.2f}x events/s ({rate:,.0f} vs {base_rate:,.0f}); "
            f"CPU per event {cpu:.1f} µs vs {base_cpu:.1f} µs; service / bare loop "
            f"{mean(rs, 'service_events_per_s') / mean(rs, 'bare_records_per_s'):.2f} vs "
            f"{mean(base, 'service_events_per_s') / mean(base, 'bare_records_per_s'):.2f}{runs_note}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--latency", action="store_true", help="also measure latency at half load")
    parser.add_argument("--py-spy", type=Path, help="profile the service with py-spy into this file")
    parser.add_argument("--latency-seconds", type=float, default=30, help="how long --latency produces")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file (for bench/run.py)")
    parser.add_argument(
        "--workers",
        type=worker_counts,
        default=[1],
        help="WORKERS of the service (CPU summed over its processes); a list (1,2) measures each"
        " in turn, on its own topic, and prints their ratio",
    )
    args = parser.parse_args()
    runs = [run(argparse.Namespace(**{**vars(args), "workers": n})) for n in args.workers]
    scaling(runs)
    if args.json is not None:
        numbers = runs[0] if len(runs) == 1 else {"runs": runs}
        args.json.write_bytes(orjson.dumps(numbers, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()

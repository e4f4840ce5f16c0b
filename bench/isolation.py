"""Isolation benchmark (issue 13): does one sick CleverTap account slow a healthy one that shares
its partitions?

Every run is a fresh topic (6 partitions), a fresh service process and the fake CleverTap on
loopback. The service starts first; then a steady stream is produced at `--rate` healthy events
per second (and as many for the second destination, interleaved, same users, so the same
partitions) until `--events` healthy events are out. Measured: the healthy account's throughput,
its records delivered ÷ the time from the first produced event to its last delivered record
(alone, that is the offered rate minus the tail of the last batch), and the service's peak RSS.
Runs:

  * solo:          only the healthy destination's events;
  * both healthy:  the second destination's account healthy too (the like-for-like CPU baseline:
                   its events cost decode/transform/delivery whatever its account does);
  * 401 dead_letter: the second account answers 401 (breaker open, records to the DLQ);
  * 401 hold:      the same with `onAuthFailure: hold` (records held within the account's
                   in-flight budget, the rest deferred);
  * stalled:       the second account never answers (requests run into the client timeout
                   and are retried; nothing of it finishes during the run).

Prints each run's healthy rate and its ratio to solo (target ≥ 0.80), peak RSS, and what became
of the sick account's records (deferred at most, dead-lettered, partition rewinds). In the hold
and stalled runs the sick account then recovers: how long until all its records are delivered
(read again from Kafka after being deferred), and how many were (more than sent: duplicates).

    .venv/bin/python bench/isolation.py [--events 20000] [--rate 500] [--timeout 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e import Service, produce, rss_peak_mb  # noqa: E402

from dev import kafka_local  # noqa: E402
from dev.demo import start_fake, total  # noqa: E402

HEALTHY, SICK = "ISO-HEALTHY", "ISO-SICK"
PARTITIONS = 6
RUNS = ("solo", "both healthy", "401 dead_letter", "401 hold", "stalled")


def events(n: int, with_sick: bool) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        for dest in ("dest-healthy", "dest-sick") if with_sick else ("dest-healthy",):
            out.append(
                {
                    "type": "track",
                    "event": "Iso Step",
                    "userId": f"user-{i % 500}",
                    "messageId": f"{dest}-{i}",
                    "properties": {"eid": i},
                    "timestamp": "2026-12-01T00:00:00Z",
                    "destinationId": dest,
                }
            )
    return out


def one_run(bootstrap: str, run: str, n: int, rate: float, timeout_s: float) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="bench-iso-"))
    topic = f"iso-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, parts in ((topic, PARTITIONS), (f"{topic}-dlq", 1)):
        admin.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1)])[name].result(30)
    sick: dict[str, Any] = {"id": "dest-sick", "accountId": SICK, "passcode": "p-sick"}
    if run == "401 hold":
        sick["onAuthFailure"] = "hold"
    dests = {"destinations": [{"id": "dest-healthy", "accountId": HEALTHY, "passcode": "p-healthy"}, sick]}
    (work / "destinations.json").write_bytes(orjson.dumps(dests))
    fake, fake_url = start_fake()
    control = httpx.Client(base_url=fake_url, trust_env=False, timeout=10)
    if run.startswith("401"):
        control.post("/_fake/faults", json={"account": SICK, "refuse": True}).raise_for_status()
    elif run == "stalled":
        control.post("/_fake/faults", json={"account": SICK, "timeout_rate": 1.0}).raise_for_status()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPICS": topic,
        "KAFKA_GROUP_ID": f"iso-{uuid.uuid4().hex[:6]}",
        "DESTINATIONS_FILE": str(work / "destinations.json"),
        "CLEVERTAP_BASE_URL": fake_url,
        "CLEVERTAP_TIMEOUT_SECONDS": str(timeout_s),
        "DLQ_TOPIC": f"{topic}-dlq",
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": str(kafka_local.free_port()),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
    }
    service = Service(env, work / "service.log")
    try:
        deadline = time.monotonic() + 120
        while True:  # measure from a running member with its partitions, not from start-up
            try:
                if total(service.metrics(), "clevertap_consumer_assigned_partitions") >= PARTITIONS:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or service.proc.poll() is not None:
                raise SystemExit(f"{run}: the service did not get its partitions (see {work}/service.log)")
            time.sleep(0.2)
        stream = events(n, run != "solo")
        producer = threading.Thread(
            target=produce, args=(bootstrap, topic, stream, rate * len(stream) / n), daemon=True
        )
        start = time.perf_counter()
        producer.start()
        deferred_peak = 0.0
        deadline = time.monotonic() + 600
        while True:
            try:
                samples = service.metrics()
            except httpx.HTTPError:
                samples = {}
            now = time.perf_counter()
            done = total(samples, "clevertap_consumer_records_delivered_total", account=HEALTHY)
            deferred_peak = max(
                deferred_peak, total(samples, "clevertap_consumer_account_deferred_records", account=SICK)
            )
            if done >= n:
                break
            if time.monotonic() > deadline or service.proc.poll() is not None:
                raise SystemExit(f"{run}: the healthy account did not finish within 600 s (see {work})")
            time.sleep(0.2)
        producer.join()
        out = {
            "healthy_records_per_s": n / (now - start),
            "peak_rss_mib": rss_peak_mb(service.proc.pid),
            "sick_delivered": total(samples, "clevertap_consumer_records_delivered_total", account=SICK),
            "sick_dead_lettered": total(samples, "clevertap_consumer_dlq_records_total"),
            "sick_deferred_peak": deferred_peak,
        }
        if run in ("401 hold", "stalled"):  # the account recovers: are its deferred records read again?
            control.post("/_fake/faults", json={"account": SICK}).raise_for_status()
            healed = time.perf_counter()
            deadline = time.monotonic() + 300
            while True:
                try:
                    samples = service.metrics()
                except httpx.HTTPError:
                    samples = {}
                sick_done = total(samples, "clevertap_consumer_records_delivered_total", account=SICK)
                if sick_done >= n:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{run}: {sick_done:,.0f} of the sick account's {n:,} not delivered")
                time.sleep(0.5)
            time.sleep(2)  # anything delivered twice would show up now
            samples = service.metrics()
            out["recovery_s"] = time.perf_counter() - healed - 2
            out["sick_delivered_after"] = total(
                samples, "clevertap_consumer_records_delivered_total", account=SICK
            )
            out["peak_rss_mib_after"] = rss_peak_mb(service.proc.pid)
        out["rewinds"] = total(samples, "clevertap_consumer_partition_rewinds_total")
        return out
    finally:
        service.proc.kill()
        service.proc.wait(30)
        fake.terminate()
        fake.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000, help="healthy events per run")
    parser.add_argument("--rate", type=float, default=500.0, help="healthy events produced per second")
    parser.add_argument("--timeout", type=float, default=5.0, help="CLEVERTAP_TIMEOUT_SECONDS (stalled run)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file (for bench/run.py)")
    args = parser.parse_args()
    bootstrap = kafka_local.up()
    print(
        f"{args.events:,} healthy events per run at {args.rate:,.0f}/s (and as many for the second "
        f"destination, same partitions); {PARTITIONS} partitions"
    )
    results: dict[str, Any] = {"events": args.events, "rate": args.rate}
    solo = 0.0
    for run in RUNS:
        r = one_run(bootstrap, run, args.events, args.rate, args.timeout)
        rate = r["healthy_records_per_s"]
        solo = solo or rate
        key = run.replace(" ", "_")
        results[f"{key}_healthy_per_s"] = rate
        results[f"{key}_ratio"] = rate / solo
        results[f"{key}_peak_rss_mib"] = r["peak_rss_mib"]
        extra = ""
        if run not in ("solo", "both healthy"):
            extra = (
                f"; sick account: {r['sick_delivered']:,.0f} delivered, {r['sick_dead_lettered']:,.0f} "
                f"dead-lettered, ≤ {r['sick_deferred_peak']:,.0f} deferred at once, "
                f"{r['rewinds']:,.0f} rewinds"
            )
            results[f"{key}_sick_deferred_peak"] = r["sick_deferred_peak"]
        if "recovery_s" in r:
            extra += (
                f"; once it recovers: all {r['sick_delivered_after']:,.0f} delivered in "
                f"{r['recovery_s']:.0f} s, peak RSS then {r['peak_rss_mib_after']:.0f} MiB"
            )
            results[f"{key}_sick_recovery_s"] = r["recovery_s"]
            results[f"{key}_sick_delivered_after_recovery"] = r["sick_delivered_after"]
        print(
            f"{run + ':':17} healthy {rate:,.0f} records/s = {rate / solo:.2f} of solo, "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB{extra}",
            flush=True,
        )
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()

"""Isolation benchmark: does one sick CleverTap account slow a healthy one in the same partitions?

Three runs, each a fresh topic and service process, real Kafka, the fake CleverTap on loopback:
  * solo:    only the healthy destination's events;
  * 401:     the same healthy events interleaved 1:1 with a second destination whose account
             answers 401 (its breaker opens; default onAuthFailure: dead_letter);
  * both healthy: the same two destinations, both accounts fine (the like-for-like baseline:
             the second destination's events cost decode/transform CPU whatever its account does);
  * stalled: the second account never answers (every request runs into the client timeout).
Prints the healthy account's delivery rate in each (records/s from its first to its last
accepted record), the ratio to solo (target ≥ 0.8), and the service's peak RSS.

    python bench/isolation.py [--events 20000] [--timeout 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
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


def one_run(bootstrap: str, n: int, sick: str | None, timeout_s: float) -> tuple[float, float]:
    work = Path(tempfile.mkdtemp(prefix="bench-iso-"))
    topic = f"iso-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, parts in ((topic, 6), (f"{topic}-dlq", 1)):
        admin.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1)])[name].result(30)
    produce(bootstrap, topic, events(n, sick is not None))
    dests = {
        "destinations": [
            {"id": "dest-healthy", "accountId": HEALTHY, "passcode": "p-healthy"},
            {"id": "dest-sick", "accountId": SICK, "passcode": "p-sick"},
        ]
    }
    (work / "destinations.json").write_bytes(orjson.dumps(dests))
    fake, fake_url = start_fake()
    control = httpx.Client(base_url=fake_url, trust_env=False, timeout=10)
    if sick == "401":
        control.post("/_fake/faults", json={"account": SICK, "refuse": True}).raise_for_status()
    elif sick == "stalled":
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
    first = last = 0.0
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            try:
                done = total(service.metrics(), "clevertap_consumer_records_delivered_total", account=HEALTHY)
            except httpx.HTTPError:
                done = 0
            now = time.perf_counter()
            if done and not first:
                first = now
            if done >= n:
                last = now
                break
            time.sleep(0.1)
        else:
            raise SystemExit(f"{sick}: the healthy account did not finish within 600 s")
        return n / (last - first), rss_peak_mb(service.proc.pid)
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
    parser.add_argument("--timeout", type=float, default=5.0, help="CLEVERTAP_TIMEOUT_SECONDS (stalled run)")
    args = parser.parse_args()
    bootstrap = kafka_local.up()
    solo, solo_rss = one_run(bootstrap, args.events, None, args.timeout)
    print(f"solo:    healthy {solo:,.0f} records/s, peak RSS {solo_rss:.0f} MiB")
    # The same volume with the second account healthy: the CPU the second destination's events
    # cost (decode, transform, batch) whatever its account does, for a like-for-like ratio.
    both, both_rss = one_run(bootstrap, args.events, "healthy", args.timeout)
    print(
        f"both healthy: healthy {both:,.0f} records/s = {both / solo:.2f} of solo, peak RSS {both_rss:.0f} MiB"
    )
    for sick in ("401", "stalled"):
        rate, rss = one_run(bootstrap, args.events, sick, args.timeout)
        print(
            f"{sick + ':':8} healthy {rate:,.0f} records/s = {rate / solo:.2f} of solo (target ≥ 0.80), "
            f"{rate / both:.2f} of both-healthy, peak RSS {rss:.0f} MiB"
        )


if __name__ == "__main__":
    main()

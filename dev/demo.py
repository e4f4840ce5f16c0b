"""`make demo`: the whole pipeline on this machine, then a summary.

A local Kafka broker (dev/kafka_local.py), a fresh topic with sample events (Avro, and some as
RudderStack's JSON) plus a few poison messages, a topic of AppsFlyer Push API postbacks bound
by `sources:`, the fake CleverTap, and `clevertap-consumer run` as its own process, exactly as it
runs in production. When every offset is committed the service gets SIGTERM and the demo prints
what happened: consumed, delivered, dead-lettered by reason, batches, commits, events/s.

    python -m dev.demo [--events 20000] [--keep-kafka]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from consumer.codec import Encoder
from consumer.sample import sample_events
from dev import kafka_local

ROOT = Path(__file__).resolve().parent.parent
DESTINATIONS = ROOT / "dev" / "demo" / "destinations.yaml"
WORK = ROOT / ".cache" / "demo"
PARTITIONS = 6
console = Console(stderr=True)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def start_fake(accounts: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """The fake CleverTap on a free port; with no accounts it takes any account and passcode."""
    args = [sys.executable, "-m", "consumer.fake_clevertap", "--port", "0"]
    for account, passcode in (accounts or {}).items():
        args += ["--account", f"{account}:{passcode}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"fake CleverTap did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


def produce(bootstrap: str, topic: str, n: int) -> int:
    """Sample events, plus poison: bytes that are not Avro and an event for an unknown destination."""
    encoder = Encoder()
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 20}
    )
    values: list[tuple[bytes | None, bytes]] = []
    for i, event in enumerate(
        sample_events(n, seed=42, destinations=("dest-1", "dest-2", "dest-3", "dest-4"))
    ):
        key = event.get("userId") or event.get("anonymousId")
        # every 50th as RudderStack's Kafka destination writes it: the message as JSON
        value = orjson.dumps(event) if i % 50 == 0 else encoder.encode(event)
        values.append((str(key).encode() if key is not None else None, value))
    values += [(None, b"\x13 this is not Avro")] * 3
    values += [
        (b"u-x", encoder.encode({"type": "track", "event": "X", "userId": "u-x", "destinationId": "nowhere"}))
    ]
    with Progress(
        TextColumn("producing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("produce", total=len(values))
        for i, (key, value) in enumerate(values):
            while True:
                try:
                    producer.produce(topic, value, key)
                    break
                except BufferError:
                    producer.poll(0.05)
            if i % 1000 == 0:
                producer.poll(0)
                bar.update(task, completed=i)
        producer.flush(60)
        bar.update(task, completed=len(values))
    return len(values)


_AF_SOURCES = ("googleadwords_int", "Facebook Ads", "tiktok_int")


def appsflyer_postbacks(n: int) -> list[dict[str, Any]]:
    """AppsFlyer Push API payloads: installs (organic and not), purchases (sent as Charged), an
    event dest-af does not list, a restricted media source and postbacks without a CleverTap ID."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = i % 10
        at = f"2026-11-30 {8 + i % 12:02d}:{i % 60:02d}:00.000"
        payload: dict[str, Any] = {
            "app_id": "com.example.demo",
            "platform": "android",
            "customer_user_id": f"__demo-af-{i}",
            "event_time": at,
            "install_time": at,
        }
        if kind < 4:
            payload |= {"event_name": "install", "media_source": _AF_SOURCES[i % 3], "campaign": "winter"}
        elif kind < 6:
            payload |= {"event_name": "install", "media_source": "organic"}
        elif kind < 8:
            value = {"af_revenue": "9.99", "af_content_id": f"sku-{i}"}
            payload |= {"event_name": "af_purchase", "event_value": orjson.dumps(value).decode()}
            payload |= {"event_revenue": "9.99", "event_revenue_currency": "EUR"}
        elif kind == 8:
            payload |= {"event_name": "af_level_achieved", "media_source": "organic"}
        elif i % 20 == 9:
            payload |= {"event_name": "install", "media_source": "restricted_network"}
        else:
            payload |= {"event_name": "install", "media_source": "organic", "customer_user_id": ""}
        out.append(payload)
    return out


def produce_json(bootstrap: str, topic: str, payloads: list[dict[str, Any]]) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for payload in payloads:
        producer.produce(topic, orjson.dumps(payload))
    producer.flush(60)
    return len(payloads)


def offsets(bootstrap: str, group: str, *topics: str) -> tuple[int, int]:
    """(committed, end) summed over the topics' partitions."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for topic in topics for p in range(PARTITIONS)]
        end = sum(c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps)
        committed = sum(max(tp.offset, 0) for tp in c.committed(tps, timeout=10))
        return committed, end
    finally:
        c.close()


def scrape(url: str) -> Samples:
    # Uncompressed: gzip is CPU the service would spend on our scrape (bench/e2e.py scrapes
    # every 100 ms and counts the service's CPU).
    out: Samples = {}
    text = httpx.get(url, timeout=5, headers={"Accept-Encoding": "identity"}).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, lbls), v in samples.items()
        if n == name and all(dict(lbls).get(k) == x for k, x in labels.items())
    )


def by_label(samples: Samples, name: str, *keys: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for (n, lbls), v in samples.items():
        if n == name and v:
            out["/".join(dict(lbls).get(k, "") for k in keys)] += int(v)
    return out


def quantile(samples: Samples, name: str, q: float) -> float | None:
    buckets = sorted(
        (float(dict(lbls)["le"]), v) for (n, lbls), v in samples.items() if n == f"{name}_bucket"
    )
    if not buckets or buckets[-1][1] == 0:
        return None
    target = q * buckets[-1][1]
    return next(le for le, count in buckets if count >= target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--keep-kafka", action="store_true", help="leave the local broker running")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)

    started_kafka = not os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and kafka_local.running() is None
    with console.status("starting Kafka (the first run downloads its jars)"):
        bootstrap = kafka_local.up()
    console.print(f"Kafka: {bootstrap}")
    run_id = time.strftime("%Y%m%d-%H%M%S")
    topic, dlq, group = f"demo-events-{run_id}", f"demo-dlq-{run_id}", f"demo-{run_id}"
    af_topic = f"demo-appsflyer-{run_id}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, parts in ((topic, PARTITIONS), (af_topic, PARTITIONS), (dlq, 1)):
        admin.create_topics([NewTopic(name, num_partitions=parts, replication_factor=1)])[name].result(30)
    del admin  # a live client would log connection errors once the broker stops at the end

    doc = yaml.safe_load(DESTINATIONS.read_text())
    accounts = {d["accountId"]: d["passcode"] for d in doc["destinations"]}
    # The AppsFlyer topic's name is per run, so its `sources:` binding is written per run too.
    doc["sources"] = [{"topic": af_topic, "format": "appsflyer", "destination": "dest-af"}]
    destinations_file = WORK / f"destinations-{run_id}.yaml"
    destinations_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    fake, fake_url = start_fake(accounts)
    console.print(f"fake CleverTap: {fake_url}")
    produced = produce(bootstrap, topic, args.events)
    produced += produce_json(bootstrap, af_topic, appsflyer_postbacks(max(20, args.events // 100)))

    metrics_port = kafka_local.free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPICS": f"{topic},{af_topic}",
        "KAFKA_GROUP_ID": group,
        "DESTINATIONS_FILE": str(destinations_file),
        "CLEVERTAP_BASE_URL": fake_url,
        "DLQ_TOPIC": dlq,
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": str(metrics_port),
        "LOG_FORMAT": "console",
        "COMMIT_INTERVAL_MS": "500",
    }
    log_path = WORK / f"service-{run_id}.log"
    with log_path.open("wb") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "consumer", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    t0 = time.monotonic()
    samples: Samples = {}
    try:
        with Progress(
            TextColumn("delivering"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as bar:
            task = bar.add_task("commit", total=produced)
            while True:
                if service.poll() is not None:
                    raise SystemExit(f"the service stopped (status {service.returncode}); see {log_path}")
                try:
                    committed, end = offsets(bootstrap, group, topic, af_topic)
                except KafkaException:
                    # A fresh broker's group coordinator may still be loading (NOT_COORDINATOR,
                    # COORDINATOR_LOAD_IN_PROGRESS): ask again, for a while.
                    if time.monotonic() - t0 > 60:
                        raise
                    time.sleep(0.5)
                    continue
                bar.update(task, completed=committed)
                if committed >= end:
                    break
                time.sleep(0.5)
        elapsed = time.monotonic() - t0
        samples = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        fake_stats = httpx.get(f"{fake_url}/_fake/stats", timeout=5).json()
        got = httpx.get(f"{fake_url}/_fake/records", params={"account": "DEMO-APP-IN"}, timeout=30).json()
        names = (str(r["record"].get("evtName")) for r in got["records"])
        installs = Counter(name for name in names if name.endswith(" Install"))
    finally:
        service.send_signal(signal.SIGTERM)
        status = service.wait(60)
        fake.terminate()
        fake.wait(10)
        if started_kafka and not args.keep_kafka:
            kafka_local.down()

    summary(
        produced=produced,
        elapsed=elapsed,
        s=samples,
        fake=fake_stats,
        status=status,
        log_path=log_path,
        offsets_line=f"{end}/{end}",
        installs=installs,
    )
    return 0 if status == 0 else 1


def summary(
    *,
    produced: int,
    elapsed: float,
    s: Samples,
    fake: dict[str, Any],
    status: int,
    log_path: Path,
    offsets_line: str,
    installs: Counter[str],
) -> None:
    table = Table(title="clevertap-consumer demo", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    consumed = total(s, "clevertap_consumer_records_consumed_total")
    table.add_row("events produced / consumed", f"{produced} / {int(consumed)}")
    finished = by_label(s, "clevertap_consumer_records_finished_total", "outcome")
    table.add_row("finished", ", ".join(f"{k}: {v}" for k, v in sorted(finished.items())))
    table.add_row(
        "CleverTap records delivered", str(int(total(s, "clevertap_consumer_records_delivered_total")))
    )
    for account, n in sorted(by_label(s, "clevertap_consumer_records_delivered_total", "account").items()):
        table.add_row(f"  account {account}", str(n))
    filtered = by_label(s, "clevertap_consumer_events_filtered_total", "reason")
    table.add_row("filtered by reason", ", ".join(f"{k}: {v}" for k, v in sorted(filtered.items())))
    table.add_row(
        "attribution installs at the fake", ", ".join(f"{k}: {v}" for k, v in sorted(installs.items()))
    )
    dlq = by_label(s, "clevertap_consumer_dlq_records_total", "stage", "reason")
    table.add_row("dead-lettered", str(sum(dlq.values())))
    for reason, n in sorted(dlq.items()):
        table.add_row(f"  {reason}", str(n))
    fixes = by_label(s, "clevertap_consumer_transform_fixes_total", "kind", "action")
    if fixes:
        table.add_row("fields fixed before sending", ", ".join(f"{k}: {v}" for k, v in sorted(fixes.items())))
    batches = by_label(s, "clevertap_consumer_batches_sent_total", "outcome")
    table.add_row("upload batches", ", ".join(f"{k}: {v}" for k, v in sorted(batches.items())))
    table.add_row(
        "HTTP requests at the fake", ", ".join(f"{k}: {v}" for k, v in sorted(fake["requests"].items()))
    )
    p50 = quantile(s, "clevertap_consumer_http_request_duration_seconds", 0.5)
    p99 = quantile(s, "clevertap_consumer_http_request_duration_seconds", 0.99)
    if p50 is not None and p99 is not None:
        table.add_row("request duration p50 / p99 (≤ bucket)", f"{p50 * 1000:.0f} ms / {p99 * 1000:.0f} ms")
    table.add_row("offsets committed", offsets_line)
    table.add_row("throughput", f"{produced / elapsed:,.0f} events/s ({elapsed:.1f} s, start-up included)")
    table.add_row(
        "service exit status", f"{status} (SIGTERM: drained and committed)" if status == 0 else str(status)
    )
    table.add_row("service log", str(log_path.relative_to(ROOT)))
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())

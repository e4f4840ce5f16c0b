"""The service as its users run it: `clevertap-consumer run` in its own process, configured by
environment variables, against the session's Kafka broker and a fake CleverTap on loopback.

Helpers here produce events the way a producer would (our Avro envelope), compute what the
transform says CleverTap must receive, and wait for observable facts (committed offsets,
records at the fake, DLQ records) instead of sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import KafkaException
from prometheus_client.parser import text_string_to_metric_families

from consumer.codec import Encoder
from consumer.destinations import parse_destinations
from consumer.transform import Accepted, Rejected, transform
from dev.kafka_local import free_port
from tests.support.fake_clevertap import DEFAULT_ACCOUNTS, FakeCleverTapProcess
from tests.support.kafka import KafkaBed

# Two destinations on two accounts of the fake, plus one that filters events.
DESTINATIONS: dict[str, Any] = {
    "destinations": [
        {"id": "dest-one", "accountId": "ACC-ONE", "passcode": DEFAULT_ACCOUNTS["ACC-ONE"], "region": "IN"},
        {
            "id": "dest-two",
            "accountId": "ACC-TWO",
            "passcode": DEFAULT_ACCOUNTS["ACC-TWO"],
            "trackAnonymous": True,
            "enableObjectIdMapping": True,
        },
        {
            "id": "dest-filtered",
            "accountId": "ACC-ONE",
            "passcode": DEFAULT_ACCOUNTS["ACC-ONE"],
            "region": "IN",
            "eventFilteringOption": "blacklistedEvents",
            "blacklistedEvents": [{"eventName": "Product Viewed"}],
        },
    ]
}
DESTINATION_IDS = [d["id"] for d in DESTINATIONS["destinations"]]


def canonical(record: Mapping[str, Any]) -> bytes:
    """A record as comparable bytes (key order does not matter to CleverTap)."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


class Expected:
    """What CleverTap must receive for a list of events, according to the transform."""

    def __init__(
        self, events: Iterable[Mapping[str, Any]], destinations: Mapping[str, Any] = DESTINATIONS
    ) -> None:
        routes = {d.id: d for d in parse_destinations(destinations).destinations}
        self.records: dict[str, Counter[bytes]] = {d.account_id: Counter() for d in routes.values()}
        self.rejected: Counter[str] = Counter()
        self.filtered = 0
        self.events = 0
        for event in events:
            self.events += 1
            dest = routes.get(str(event.get("destinationId")))
            if dest is None:
                self.rejected["unknown_destination"] += 1
                continue
            result = transform(event, dest.transform_config())
            if isinstance(result, Accepted):
                self.records[dest.account_id].update(canonical(r.data) for r in result.records)
                if not result.records:
                    self.filtered += 1
            elif isinstance(result, Rejected):
                self.rejected[result.reason] += 1
            else:
                self.filtered += 1

    @property
    def total_records(self) -> int:
        return sum(sum(c.values()) for c in self.records.values())

    def compare(self, delivered: Mapping[str, Counter[bytes]]) -> tuple[int, int]:
        """(missing, duplicates): expected records never delivered, and deliveries beyond one each."""
        missing = duplicates = 0
        for account, want in self.records.items():
            got = delivered.get(account, Counter())
            missing += sum((want - got).values())
            duplicates += sum((got - want).values())
            unexpected = set(got) - set(want)
            assert not unexpected, (
                f"{account} got records the transform never made: {sorted(unexpected)[:2]!r}"
            )
        return missing, duplicates


class ServiceProcess:
    """One `clevertap-consumer run` process."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.port = int(env["METRICS_PORT"])
        self.process: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5.0, trust_env=False)

    def start(self) -> ServiceProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "consumer", "run"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until /readyz answers 200: the group assigned us partitions (or none, but answered)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise AssertionError(f"service exited early:\n{self.log_tail()}")
            try:
                if self._http.get("/readyz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"service not ready within {timeout}s:\n{self.log_tail()}")

    def metrics_text(self) -> str:
        return self._http.get("/metrics").text

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of a /metrics scrape, keyed by (name, sorted labels)."""
        text = self.metrics_text()
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def metric_sum(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include `labels`."""
        total = 0.0
        for (n, lbls), value in self.metrics().items():
            if n == name and all(dict(lbls).get(k) == v for k, v in labels.items()):
                total += value
        return total

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for the drain; returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)

    def close(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait(30)
        self._http.close()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


class Bed:
    """A topic, a DLQ topic, a destinations file and a consumer group for one test."""

    def __init__(
        self, kafka: KafkaBed, fake: FakeCleverTapProcess, tmp_path: Path, topic: str, dlq_topic: str
    ) -> None:
        self.kafka = kafka
        self.fake = fake
        self.tmp_path = tmp_path
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.group = f"g-{uuid.uuid4().hex[:8]}"
        self.destinations_file = tmp_path / "destinations.json"
        self.destinations_file.write_text(json.dumps(DESTINATIONS))
        self.encoder = Encoder()
        self.services: list[ServiceProcess] = []

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KAFKA_", "CLEVERTAP_", "DLQ_", "METRICS_", "SCHEMA_REGISTRY_"))
        }
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap,
                "KAFKA_TOPICS": self.topic,
                "KAFKA_GROUP_ID": self.group,
                "KAFKA_SESSION_TIMEOUT_MS": "6000",
                "DESTINATIONS_FILE": str(self.destinations_file),
                "CLEVERTAP_BASE_URL": self.fake.url,
                "DLQ_TOPIC": self.dlq_topic,
                "METRICS_HOST": "127.0.0.1",
                "METRICS_PORT": str(free_port()),
                "BATCH_LINGER_MS": "50",
                "DELIVERY_RETRY_BUDGET_SECONDS": "30",
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "INFO",
                "SECRETS_DIRS": str(self.tmp_path / "no-secrets"),
            }
        )
        env.update(overrides)
        return env

    def service(self, **overrides: str) -> ServiceProcess:
        n = len(self.services)
        svc = ServiceProcess(self.env(**overrides), self.tmp_path / f"service-{n}.log")
        self.services.append(svc)
        return svc.start()

    def produce(self, events: Iterable[Mapping[str, Any]]) -> None:
        values, keys = [], []
        for e in events:
            values.append(self.encoder.encode(e))
            key = e.get("userId") or e.get("anonymousId")
            keys.append(str(key).encode() if key is not None else None)
        self.kafka.produce(self.topic, values, keys=keys)

    def committed_total(self) -> int:
        return sum(self.kafka.committed(self.group, self.topic).values())

    def end_total(self) -> int:
        return sum(self.kafka.end_offsets(self.topic).values())

    def wait_committed_to_end(self, timeout: float = 90.0) -> None:
        end = {p: o for p, o in self.kafka.end_offsets(self.topic).items() if o > 0}
        wait_for(
            lambda: (
                {p: o for p, o in self.kafka.committed(self.group, self.topic).items() if p in end} == end
            ),
            timeout,
            lambda: (
                f"committed {self.kafka.committed(self.group, self.topic)} != end {end}\n"
                + "\n".join(s.log_tail(2000) for s in self.services)
            ),
        )

    def delivered(self) -> dict[str, Counter[bytes]]:
        return {
            account: Counter(canonical(r) for r in self.fake.records(account)) for account in DEFAULT_ACCOUNTS
        }

    def delivered_count(self) -> int:
        return len(self.fake.records())

    def dead_letters(self, expected: int, timeout: float = 30.0) -> list[Any]:
        return self.kafka.consume_all(self.dlq_topic, expected, timeout)

    def close(self) -> None:
        for s in self.services:
            s.close()
        self.encoder.close()


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    describe: Callable[[], str] = lambda: "",
    interval: float = 0.25,
) -> None:
    """Poll `condition` every `interval` s until it holds (a guard against hangs, not a speed
    assertion).

    A Kafka error while asking (a broker restarting, a leader moving) counts as "not yet".
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except KafkaException:
            pass
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {describe()}")


@pytest.fixture
def bed(
    kafka: KafkaBed, fake_clevertap: FakeCleverTapProcess, new_topic: Callable[..., str], tmp_path: Path
) -> Iterator[Bed]:
    b = Bed(kafka, fake_clevertap, tmp_path, new_topic(partitions=4), new_topic(suffix="-dlq"))
    try:
        yield b
    finally:
        b.close()

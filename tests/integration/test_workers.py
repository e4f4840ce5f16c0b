"""WORKERS=2: two full consumer processes under one supervisor, against the real broker and the
fake CleverTap, judged from outside (the fake's records, committed offsets, the parent's
/metrics and probes, exit status)."""

from __future__ import annotations

import json
import os
import signal
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.campaign import accounts, books, delivered_ids, events, write_destinations
from tests.support.fake_clevertap import FakeCleverTapProcess
from tests.support.kafka import KafkaBed
from tests.support.service import Bed, ServiceProcess, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


@pytest.fixture
def workers_bed(
    kafka: KafkaBed,
    start_fake: Callable[..., FakeCleverTapProcess],
    new_topic: Callable[..., str],
    tmp_path: Path,
) -> Iterator[Bed]:
    fake = start_fake(accounts=accounts(2))
    b = Bed(kafka, fake, tmp_path, new_topic(partitions=4), new_topic(suffix="-dlq"))
    write_destinations(b, 2)
    try:
        yield b
    finally:
        b.close()


def _probe(service: ServiceProcess, path: str) -> tuple[int, dict[str, object]]:
    reply = httpx.get(f"http://127.0.0.1:{service.port}{path}", timeout=10, trust_env=False)
    return reply.status_code, reply.json()


def _worker_pids(service: ServiceProcess) -> list[int]:
    for line in service.log_path.read_text().splitlines():
        if line.startswith("{") and json.loads(line).get("message") == "started workers":
            pids: list[int] = json.loads(line)["pids"]
            return pids
    raise AssertionError(f"no 'started workers' line:\n{service.log_tail()}")


def _in_user_order(bed: Bed) -> dict[str, list[int]]:
    """Users whose events reached the fake out of order: user → ids in arrival order."""
    seen: dict[str, list[int]] = defaultdict(list)
    for record in bed.fake.records():
        seen[record["identity"]].append(int(record["evtData"]["eid"]))
    return {user: ids for user, ids in seen.items() if ids != sorted(ids)}


def test_two_workers_deliver_each_event_once_in_user_order_sum_metrics_reload_and_drain(
    workers_bed: Bed,
) -> None:
    bed = workers_bed
    # One request in flight per worker and account: each worker's batches reach the fake in the
    # order it made them, so any reordering at the fake would be the workers' doing.
    service = bed.service(WORKERS="2", CLEVERTAP_MAX_IN_FLIGHT="2", BATCH_MAX_RECORDS="50")
    service.wait_ready(timeout=90)
    status, live = _probe(service, "/healthz")
    assert status == 200, live
    first = events(2000, 2)
    bed.produce(first)
    bed.wait_committed_to_end()

    result = books(bed, len(first))
    assert (result.lost, result.duplicates) == ([], 0), result.summary("workers")
    assert _in_user_order(bed) == {}
    status, ready = _probe(service, "/readyz")
    assert status == 200, ready
    per_worker = ready["workers"]
    assert isinstance(per_worker, dict), ready
    assert sorted(per_worker) == ["0", "1"], ready
    assert all(w["assigned_partitions"] >= 1 for w in per_worker.values()), ready  # both consumed
    # The parent's /metrics is the sum over both workers.
    assert service.metric_sum("clevertap_consumer_records_consumed_total") == len(first)
    assert service.metric_sum("clevertap_consumer_records_finished_total", outcome="delivered") == len(first)
    assert service.metric_sum("clevertap_consumer_records_delivered_total") == len(first)
    assert service.metric_sum("clevertap_consumer_assigned_partitions") == 4
    assert service.metric_sum("clevertap_consumer_concurrency_limit", account="ACC-0") == 2
    assert service.metric_sum("clevertap_consumer_in_flight_records") == 0
    assert service.metric_sum("clevertap_consumer_ready") == 1
    assert service.metric_sum("process_cpu_seconds_total") > 0
    assert service.metric_sum("clevertap_consumer_build_info") == 1

    # SIGHUP to the parent reaches both workers.
    assert service.process is not None
    service.process.send_signal(signal.SIGHUP)
    wait_for(
        lambda: service.metric_sum("clevertap_consumer_config_reloads_total", outcome="applied") == 2,
        30,
        service.log_tail,
    )

    # SIGTERM while both are delivering: each drains what it holds and commits it.
    bed.fake.set_faults(latency_ms=300)
    bed.produce(events(2000, 2, start=len(first)))
    wait_for(lambda: len(delivered_ids(bed.fake)) >= len(first) + 100, 60, service.log_tail)
    assert service.terminate(timeout=90) == 0, service.log_tail()
    delivered = delivered_ids(bed.fake)
    assert max(delivered.values()) == 1
    assert bed.committed_total() == len(delivered), "every delivered event committed, nothing more"
    assert bed.committed_total() > len(first) + 100
    log = service.log_path.read_text()
    assert log.count('"message": "worker stopped"') == 2, service.log_tail()


def test_two_workers_share_the_account_cap_and_a_crashed_worker_stops_the_pod(workers_bed: Bed) -> None:
    bed = workers_bed
    write_destinations(bed, 1)  # one account takes every request
    bed.fake.set_faults(latency_ms=150)
    service = bed.service(WORKERS="2", CLEVERTAP_MAX_IN_FLIGHT="4", BATCH_MAX_RECORDS="10")
    service.wait_ready(timeout=90)
    bed.produce(events(3000, 1))
    bed.wait_committed_to_end(timeout=120)

    stats = bed.fake.stats()
    peak = stats["max_concurrency"]["ACC-0"]
    assert peak <= 4, stats  # the cap holds summed over the workers (2 + 2) ...
    assert peak > 2, stats  # ... and both workers used their share at the same time
    assert "429" not in stats["requests"], stats
    assert len(delivered_ids(bed.fake)) == 3000

    # A worker that dies takes the pod down (non-zero), after the other one drained.
    os.kill(_worker_pids(service)[1], signal.SIGKILL)
    assert service.process is not None
    assert service.process.wait(60) == 1, service.log_tail()
    assert "worker exited on its own" in service.log_tail(20_000)

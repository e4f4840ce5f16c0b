"""The metric set: names other modules rely on, Prometheus lint, pre-initialisation, helpers."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import confluent_kafka
import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import consumer
from consumer import metrics as m
from consumer.health import HealthServer

from .sample import all_metrics, exercise_every_metric

# Python name → label names. Other stages import these objects and call .labels(...) with
# these names; renaming one breaks them at run time, so the test pins them.
STABLE: dict[str, tuple[str, ...]] = {
    "records_consumed": ("topic",),
    "consumed_bytes": ("topic",),
    "assigned_partitions": ("topic",),
    "rebalances": ("event",),
    "paused": (),
    "consumer_lag": ("topic", "partition"),
    "committed_offset": ("topic", "partition"),
    "last_processed_timestamp": ("topic", "partition"),
    "commits": ("outcome",),
    "decode_failures": ("reason",),
    "records_transformed": ("destination",),
    "events_rejected": ("stage", "reason"),
    "events_filtered": ("destination", "reason"),
    "transform_fixes": ("kind", "action"),
    "batch_records": (),
    "batch_bytes": (),
    "batches_sent": ("account", "outcome"),
    "http_responses": ("status_class",),
    "http_request_duration": ("status_class",),
    "http_request_errors": ("error",),
    "retries": ("reason",),
    "records_delivered": ("account",),
    "clevertap_record_errors": ("code",),
    "in_flight_requests": ("account",),
    "concurrency_limit": ("account",),
    "end_to_end_latency": (),
    "last_delivery_timestamp": (),
    "in_flight_records": (),
    "in_flight_bytes": (),
    "dead_lettered": ("stage", "reason"),
    "dlq_publish_failures": (),
    "build_info": (),
    "deletion_requests": ("outcome",),
    "deleted_ids": (),
    "deletion_calls": ("account", "status"),
}


def _scrape(server: HealthServer) -> str:
    response = httpx.get(f"{server.url}/metrics", timeout=5.0)
    response.raise_for_status()
    return response.text


def test_python_names_and_label_names_other_stages_use_are_stable() -> None:
    defined = all_metrics()
    for name, labels in STABLE.items():
        metric = defined.get(name)
        assert metric is not None, f"consumer.metrics.{name} is gone"
        if labels:
            child = metric.labels(**dict.fromkeys(labels, "stability-check"))
            assert child is not None
            metric.remove(*(["stability-check"] * len(labels)))
        else:
            with pytest.raises(ValueError, match="No label names"):
                metric.labels("x")


def test_every_family_is_exported_with_the_prefix_and_passes_promtool_lint(
    promtool: Path, server: HealthServer
) -> None:
    exercise_every_metric()
    text = _scrape(server)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for py_name, metric in all_metrics().items():
        for family in metric.describe():
            assert family.name.startswith("clevertap_consumer_"), py_name
            # The text format carries an Info as a gauge named `<name>_info`.
            exported = f"{family.name}_info" if family.type == "info" else family.name
            assert exported in families, f"{py_name} ({exported}) missing from /metrics"
            assert families[exported].samples, f"{exported} has no samples"

    lint = subprocess.run(
        [str(promtool), "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout.strip() == "", lint.stdout  # promtool prints lint findings, if any, here


def test_exposition_has_no_created_series_and_counters_end_in_total(server: HealthServer) -> None:
    exercise_every_metric()
    text = _scrape(server)
    assert "_created" not in text
    for family in text_string_to_metric_families(text):
        if family.type == "counter" and family.name.startswith("clevertap_consumer_"):
            assert all(s.name.endswith("_total") for s in family.samples), family.name


def test_initialise_creates_the_series_alerts_rely_on_at_zero() -> None:
    # route/unknown_destination is a real label pair that other tests in this process may have
    # counted already: initialise must create it when missing and never reset it.
    route_before = REGISTRY.get_sample_value(
        "clevertap_consumer_dlq_records_total", {"stage": "route", "reason": "unknown_destination"}
    )
    m.initialise(
        topics=["init-topic"],
        accounts=["init-acc"],
        destinations=["init-dest"],
        reasons={
            "route": ["unknown_destination"],
            "transform": ["init_reason"],
            "deliver": ["init_deliver_reason"],
        },
        retry_reasons=["init_retry"],
        http_errors=["init_error"],
        fix_kinds=["init_fix"],
        concurrency=7,
    )
    get = REGISTRY.get_sample_value
    for code in ("200", "401", "403", "429"):
        assert get("clevertap_consumer_upload_responses_total", {"account": "init-acc", "code": code}) == 0
    for outcome in m.BATCH_OUTCOMES:
        assert get("clevertap_consumer_batches_sent_total", {"account": "init-acc", "outcome": outcome}) == 0
    assert get("clevertap_consumer_records_delivered_total", {"account": "init-acc"}) == 0
    assert get("clevertap_consumer_concurrency_limit", {"account": "init-acc"}) == 7
    assert get("clevertap_consumer_records_consumed_total", {"topic": "init-topic"}) == 0
    assert get("clevertap_consumer_records_transformed_total", {"destination": "init-dest"}) == 0
    assert get("clevertap_consumer_delivery_retries_total", {"reason": "init_retry"}) == 0
    assert get("clevertap_consumer_http_request_errors_total", {"error": "init_error"}) == 0
    # Stage-supplied reasons, each only under its own stage.
    dlq = "clevertap_consumer_dlq_records_total"
    assert get(dlq, {"stage": "route", "reason": "unknown_destination"}) == (route_before or 0)
    assert get(dlq, {"stage": "transform", "reason": "init_reason"}) == 0
    assert get(dlq, {"stage": "deliver", "reason": "init_deliver_reason"}) == 0
    assert get(dlq, {"stage": "route", "reason": "init_reason"}) is None
    assert (
        get("clevertap_consumer_events_rejected_total", {"stage": "transform", "reason": "init_reason"}) == 0
    )
    assert (
        get("clevertap_consumer_events_rejected_total", {"stage": "deliver", "reason": "init_deliver_reason"})
        is None
    )
    assert get("clevertap_consumer_transform_fixes_total", {"kind": "init_fix", "action": "dropped"}) == 0
    # Not per account, so other tests in this process may already have counted 5xx responses.
    assert get("clevertap_consumer_http_request_duration_seconds_count", {"status_class": "5xx"}) is not None
    build: dict[str, str] = {
        "version": consumer.__version__,
        "python": platform.python_version(),
        "confluent_kafka": str(confluent_kafka.__version__),
        "librdkafka": str(confluent_kafka.libversion()[0]),
    }
    assert get("clevertap_consumer_build_info", build) == 1


def test_initialise_keeps_existing_counts() -> None:
    m.records_delivered.labels(account="keep-acc").inc(5)
    m.initialise(accounts=["keep-acc"])
    assert (
        REGISTRY.get_sample_value("clevertap_consumer_records_delivered_total", {"account": "keep-acc"}) == 5
    )


def test_observe_response_keeps_aggregate_and_per_account_series_in_step() -> None:
    get = REGISTRY.get_sample_value
    before_4xx = get("clevertap_consumer_http_responses_total", {"status_class": "4xx"}) or 0
    before_hist = get("clevertap_consumer_http_request_duration_seconds_count", {"status_class": "4xx"}) or 0
    m.observe_response("resp-acc", 429, 0.05)
    m.observe_response("resp-acc", 401, 0.02)
    assert get("clevertap_consumer_http_responses_total", {"status_class": "4xx"}) == before_4xx + 2
    assert (
        get("clevertap_consumer_http_request_duration_seconds_count", {"status_class": "4xx"})
        == before_hist + 2
    )
    assert get("clevertap_consumer_upload_responses_total", {"account": "resp-acc", "code": "429"}) == 1
    assert get("clevertap_consumer_upload_responses_total", {"account": "resp-acc", "code": "401"}) == 1


@pytest.mark.parametrize(
    ("status", "cls", "code"),
    [
        (200, "2xx", "200"),
        (429, "4xx", "429"),
        (599, "5xx", "599"),
        (99, "other", "other"),
        (600, "other", "other"),
    ],
)
def test_status_labels_stay_bounded(status: int, cls: str, code: str) -> None:
    assert m.status_class(status) == cls
    assert m.status_code(status) == code


def test_forget_partitions_drops_only_the_revoked_partitions() -> None:
    for p in (0, 1):
        m.consumer_lag.labels(topic="forget-t", partition=str(p)).set(10 + p)
        m.committed_offset.labels(topic="forget-t", partition=str(p)).set(100 + p)
        m.last_processed_timestamp.labels(topic="forget-t", partition=str(p)).set(1.0)
    m.forget_partitions([("forget-t", 0), ("forget-t", 7)])  # 7 was never seen: no error
    get = REGISTRY.get_sample_value
    assert get("clevertap_consumer_consumer_lag", {"topic": "forget-t", "partition": "0"}) is None
    assert get("clevertap_consumer_committed_offset", {"topic": "forget-t", "partition": "0"}) is None
    assert (
        get(
            "clevertap_consumer_last_processed_record_timestamp_seconds",
            {"topic": "forget-t", "partition": "0"},
        )
        is None
    )
    assert get("clevertap_consumer_consumer_lag", {"topic": "forget-t", "partition": "1"}) == 11


@pytest.mark.parametrize("now_ms", [1_790_000_000_000.0, 1_790_000_000_000.37])
@pytest.mark.parametrize("future", [False, True])
def test_observe_ages_counts_exactly_as_one_observe_per_age(now_ms: float, future: bool) -> None:
    from prometheus_client import CollectorRegistry, Histogram

    # Ages on the bucket bounds exactly (50 ms, 100 ms, 2.5 s), just past them, far past all.
    ages_ms = [0, 50, 51, 100, 300, 1000, 2500, 2501, 7000, 99_000, 10**12]
    stamps: list[int | None] = [*(int(now_ms) - a for a in ages_ms), None, 0]  # no stamp: skipped
    if future:
        stamps.append(int(now_ms) + 5_000)  # a producer clock ahead of ours: age 0
    registry = CollectorRegistry()
    one = Histogram("one_seconds", "h", buckets=(0.05, 0.1, 1, 2.5, 10), registry=registry)
    many = Histogram("many_seconds", "h", buckets=(0.05, 0.1, 1, 2.5, 10), registry=registry)
    for s in stamps:
        if s:
            one.observe(max(0.0, now_ms - s) / 1000)
    m.observe_ages(many, now_ms, stamps)
    m.observe_ages(many, now_ms, [None])  # nothing observed: nothing changes

    def samples(name: str) -> list[tuple[str, dict[str, str], float]]:
        return [
            (s.name.replace(name, ""), s.labels, s.value)
            for family in registry.collect()
            if family.name == name
            for s in family.samples
            if not s.name.endswith("_sum")
        ]

    def total(name: str) -> float:
        return next(
            s.value
            for f in registry.collect()
            if f.name == name
            for s in f.samples
            if s.name.endswith("_sum")
        )

    assert samples("one_seconds") == samples("many_seconds")
    assert total("many_seconds") == pytest.approx(total("one_seconds"), rel=1e-12)
    # 0 and 50 ms (and the future stamp) are ≤ 0.05 s; 50.37 ms is not
    expected_first = (3 if future else 2) - (now_ms % 1 > 0)
    assert {s[1].get("le"): s[2] for s in samples("many_seconds") if s[0] == "_bucket"}[
        "0.05"
    ] == expected_first

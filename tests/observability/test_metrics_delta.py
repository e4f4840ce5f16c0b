"""The counter-arithmetic helper the end-to-end "counters add up" test relies on."""

from __future__ import annotations

from consumer import metrics as m
from tests.support.metrics import MetricsDelta


def test_delta_counts_only_what_happened_since_the_snapshot() -> None:
    m.dead_lettered.labels(stage="decode", reason="delta_a").inc(5)  # before: not counted
    delta = MetricsDelta()
    m.dead_lettered.labels(stage="decode", reason="delta_a").inc(2)
    m.dead_lettered.labels(stage="deliver", reason="delta_b").inc(3)  # a series new since then
    m.end_to_end_latency.observe(0.3)

    name = "clevertap_consumer_dlq_records_total"
    assert delta.total(name, reason="delta_a") == 2
    assert delta.total(name, stage="deliver", reason="delta_b") == 3
    assert delta.by(name, "reason") == {"delta_a": 2, "delta_b": 3}
    assert delta.total("clevertap_consumer_end_to_end_latency_seconds_count") == 1
    assert delta.total("clevertap_consumer_end_to_end_latency_seconds_bucket", le="0.5") == 1
    assert delta.total("clevertap_consumer_end_to_end_latency_seconds_bucket", le="0.25") == 0

    delta.reset()
    assert delta.total(name) == 0

"""Give every metric of consumer.metrics a value through the real metric objects.

Used where a test needs a registry in which every family has samples: `promtool check metrics`
on a real scrape, and the dashboard queries run on a real Prometheus.
"""

from __future__ import annotations

import time

from prometheus_client.metrics import MetricWrapperBase

from consumer import metrics as m

TOPIC = "sample-events"
ACCOUNT = "SAMPLE-ACC-1"
DESTINATION = "sample-dest-1"


def all_metrics() -> dict[str, MetricWrapperBase]:
    """Every metric object consumer.metrics defines, by Python name."""
    return {name: obj for name, obj in vars(m).items() if isinstance(obj, MetricWrapperBase)}


def exercise_every_metric() -> None:
    """Set or increment every metric once, with label values a real run would produce."""
    m.initialise(
        topics=[TOPIC],
        accounts=[ACCOUNT],
        destinations=[DESTINATION],
        reasons={"transform": ["invalid_timestamp"]},
        fix_kinds=["key_too_long"],
        concurrency=15,
    )
    now = time.time()
    part = {"topic": TOPIC, "partition": "0"}
    m.records_consumed.labels(topic=TOPIC).inc(10)
    m.consumed_bytes.labels(topic=TOPIC).inc(4096)
    m.records_decoded.labels(topic=TOPIC).inc(9)
    m.assigned_partitions.labels(topic=TOPIC).set(1)
    m.rebalances.labels(event="assigned").inc()
    m.paused.set(0)
    m.consumer_lag.labels(**part).set(42)
    m.committed_offset.labels(**part).set(1000)
    m.last_processed_timestamp.labels(**part).set(now - 1.5)
    m.commits.labels(outcome="success").inc()
    m.kafka_broker_rtt_avg.labels(broker="127.0.0.1:9092/1").set(0.002)
    m.kafka_broker_rtt_p99.labels(broker="127.0.0.1:9092/1").set(0.004)
    m.kafka_broker_up.labels(broker="127.0.0.1:9092/1").set(1)
    m.kafka_fetch_queue_records.set(3)
    m.kafka_fetch_queue_bytes.set(300)

    m.decode_failures.labels(reason="avro_error").inc()
    m.records_transformed.labels(destination=DESTINATION).inc(8)
    m.events_rejected.labels(stage="transform", reason="missing_identity").inc()
    m.events_filtered.labels(destination=DESTINATION, reason="event_filter").inc()
    m.transform_fixes.labels(kind="key_too_long", action="dropped").inc()

    m.batch_records.observe(8)
    m.batch_bytes.observe(2048)
    m.batches_sent.labels(account=ACCOUNT, outcome="partial").inc()
    m.observe_response(ACCOUNT, 200, 0.12)
    m.observe_response(ACCOUNT, 429, 0.03)
    m.http_request_errors.labels(error="timeout").inc()
    m.retries.labels(reason="throttled").inc()
    m.records_delivered.labels(account=ACCOUNT).inc(7)
    m.clevertap_record_errors.labels(code="512").inc()
    m.in_flight_requests.labels(account=ACCOUNT).set(2)
    m.concurrency_limit.labels(account=ACCOUNT).set(12)
    m.end_to_end_latency.observe(0.4)
    m.last_delivery_timestamp.set(now - 2)

    m.in_flight_records.set(1)
    m.in_flight_bytes.set(512)
    m.records_finished.labels(outcome="delivered").inc(7)
    m.records_finished.labels(outcome="dead_lettered").inc(2)
    m.dead_lettered.labels(stage="transform", reason="missing_identity").inc()
    m.dlq_publish_failures.inc()
    m.ready.set(1)

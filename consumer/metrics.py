"""Every Prometheus metric the service exports, defined once.

Stages import the objects they update from here, so names, labels and buckets stay consistent
and the dashboard and alert rules have one place to check against. Label values come from small
fixed sets (stage, reason, status class, CleverTap code) or from the destinations file (account,
destination): never user ids, message ids or raw error text. Passcodes are never labels.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

PREFIX = "clevertap_consumer"

# Source
records_consumed = Counter(f"{PREFIX}_records_consumed", "Kafka records polled.", ["topic"])
consumed_bytes = Counter(f"{PREFIX}_consumed_bytes", "Bytes of Kafka record values polled.", ["topic"])
assigned_partitions = Gauge(f"{PREFIX}_assigned_partitions", "Partitions currently assigned.", ["topic"])
rebalances = Counter(f"{PREFIX}_rebalances", "Rebalance callbacks by kind.", ["event"])
paused = Gauge(f"{PREFIX}_paused", "1 while consumption is paused for backpressure.")
consumer_lag = Gauge(
    f"{PREFIX}_consumer_lag", "High watermark minus committed offset, records.", ["topic", "partition"]
)
committed_offset = Gauge(f"{PREFIX}_committed_offset", "Last committed offset.", ["topic", "partition"])
last_processed_timestamp = Gauge(
    f"{PREFIX}_last_processed_timestamp_seconds",
    "Kafka timestamp of the newest record finished (delivered or dead-lettered), per partition.",
    ["topic", "partition"],
)
commits = Counter(f"{PREFIX}_commits", "Offset commits by outcome.", ["outcome"])

# Decode, route, transform
decode_failures = Counter(f"{PREFIX}_decode_failures", "Records that could not be decoded.", ["reason"])
records_transformed = Counter(
    f"{PREFIX}_records_transformed", "CleverTap records produced by the transform.", ["destination"]
)
events_rejected = Counter(
    f"{PREFIX}_events_rejected", "Events refused before delivery, by stage and reason.", ["stage", "reason"]
)
events_filtered = Counter(
    f"{PREFIX}_events_filtered", "Events skipped on purpose by a destination's event filter.", ["destination"]
)
transform_fixes = Counter(
    f"{PREFIX}_transform_fixes",
    "Fields the default profile fixed or dropped so CleverTap accepts the record.",
    ["kind", "action"],
)

# Batch and deliver
batch_records = Histogram(
    f"{PREFIX}_batch_records",
    "Records per upload request.",
    buckets=(1, 10, 50, 100, 250, 500, 750, 1000),
)
batch_bytes = Histogram(
    f"{PREFIX}_batch_bytes",
    "Body bytes per upload request.",
    buckets=(1e3, 1e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2e6, 4e6, 8e6),
)
batches_sent = Counter(f"{PREFIX}_batches_sent", "Upload batches by final outcome.", ["account", "outcome"])
http_responses = Counter(
    f"{PREFIX}_http_responses", "CleverTap HTTP responses by status class.", ["status_class"]
)
http_request_duration = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "CleverTap request duration per attempt.",
    ["status_class"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
http_request_errors = Counter(
    f"{PREFIX}_http_request_errors", "Requests that got no HTTP response, by error kind.", ["error"]
)
retries = Counter(f"{PREFIX}_delivery_retries", "Retried upload attempts by reason.", ["reason"])
records_delivered = Counter(f"{PREFIX}_records_delivered", "Records CleverTap accepted.", ["account"])
clevertap_record_errors = Counter(
    f"{PREFIX}_clevertap_record_errors",
    "Per-record errors in CleverTap replies, by CleverTap code.",
    ["code"],
)
in_flight_requests = Gauge(f"{PREFIX}_in_flight_requests", "Upload requests in flight.", ["account"])
concurrency_limit = Gauge(
    f"{PREFIX}_concurrency_limit",
    "Adaptive limit on concurrent requests (≤ 15, lowered on 429).",
    ["account"],
)
end_to_end_latency = Histogram(
    f"{PREFIX}_end_to_end_latency_seconds",
    "Kafka record timestamp to CleverTap acceptance.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
last_delivery_timestamp = Gauge(
    f"{PREFIX}_last_successful_delivery_timestamp_seconds", "Unix time of the last accepted upload."
)

# Flow control and DLQ
in_flight_records = Gauge(f"{PREFIX}_in_flight_records", "Kafka records read but not yet finished.")
in_flight_bytes = Gauge(f"{PREFIX}_in_flight_bytes", "Bytes of Kafka records read but not yet finished.")
dead_lettered = Counter(
    f"{PREFIX}_dead_lettered", "Kafka records written to the DLQ, by stage and reason.", ["stage", "reason"]
)
dlq_publish_failures = Counter(f"{PREFIX}_dlq_publish_failures", "DLQ writes the broker did not acknowledge.")

build_info = Info(f"{PREFIX}_build", "Version of the running service.")

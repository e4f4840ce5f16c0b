"""Every Prometheus metric the service exports, defined once.

Stages import the objects they update from here, so names, labels and buckets stay consistent
and the dashboard and alert rules (dashboards/) have one place to be checked against: the test
suite fails when a dashboard query or an alert names a series this module does not export.

Naming follows Prometheus conventions: the `clevertap_consumer_` prefix, base units (seconds,
bytes), `_total` on counters, `_timestamp_seconds` for "last time X", `_info` for build data.

Label values come from small fixed sets (stage, reason, status class, outcome, CleverTap code,
HTTP status) or from the destinations file (account, destination) or Kafka (topic, partition,
broker): never user ids, message ids or raw error text, because every distinct value is a new
time series kept for weeks. Passcodes are never labels.

Two different "records" appear here, and the help texts say which: a *Kafka record* is one
consumed message; a *CleverTap record* is one element of an upload body (one Kafka record
usually makes one, sometimes more or none).

Counters that are only created on first use are invisible to `rate()` and `increase()` until
their second sample, so an alert on "any 401 in 5 minutes" would miss the first one. Call
`initialise()` once at start-up so the series operators alert on exist at 0 from the first scrape.
"""

from __future__ import annotations

import bisect
import contextlib
import importlib.metadata
import itertools
import operator
import os
import platform
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Final

from prometheus_client import Counter, Gauge, Histogram, Info, disable_created_metrics

from .codec.errors import TRANSIENT_REASONS
from .transform import ATTRIBUTION_FILTER_REASONS

# `_created` series double the number of counter series and no query here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

PREFIX: Final = "clevertap_consumer"
#: Under WORKERS > 1 each worker writes its series to files the supervisor merges into one
#: /metrics (prometheus_client's multiprocess mode, chosen at import from this variable).
#: Counters and histograms add up; each gauge says how its workers' values combine
#: (`multiprocess_mode`: `live*` modes forget a worker once it exited).
MULTIPROCESS: Final = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# ---------------------------------------------------------------------------------------------
# Label vocabularies. Known values are pre-initialised to 0 by `initialise()`; a value outside
# these sets still works (it simply appears on first use), but dashboards and alerts are written
# against these.

STAGES: Final = ("decode", "route", "transform", "deliver")
REBALANCE_EVENTS: Final = ("assigned", "revoked", "lost")
COMMIT_OUTCOMES: Final = ("success", "failure")
BATCH_OUTCOMES: Final = ("delivered", "partial", "failed", "unfinished")
STATUS_CLASSES: Final = ("2xx", "3xx", "4xx", "5xx")
FINISH_OUTCOMES: Final = ("delivered", "dead_lettered", "filtered", "already_done")
FIX_ACTIONS: Final = ("fixed", "dropped")
RELOAD_OUTCOMES: Final = ("applied", "invalid")
FILTER_REASONS: Final = (
    "event_filter",
    "integrations_disabled",
    "consent_denied",
    "not_replayed",
    *ATTRIBUTION_FILTER_REASONS,
)
# HTTP statuses worth a per-account series from the start: success, auth/region problems (the
# alerting pair 401/403), throttling, and the server errors that trigger retries.
UPLOAD_CODES: Final = ("200", "400", "401", "403", "429", "500", "502", "503", "504")

# ---------------------------------------------------------------------------------------------
# Source (Kafka)

records_consumed = Counter(
    f"{PREFIX}_records_consumed_total", "Kafka records polled, before decoding.", ["topic"]
)
consumed_bytes = Counter(f"{PREFIX}_consumed_bytes_total", "Bytes of Kafka record values polled.", ["topic"])
assigned_partitions = Gauge(
    f"{PREFIX}_assigned_partitions",
    "Partitions currently assigned to this consumer.",
    ["topic"],
    multiprocess_mode="livesum",
)
rebalances = Counter(
    f"{PREFIX}_rebalances_total",
    "Rebalance callbacks by kind: assigned, revoked, lost (lost = revoked without a chance to commit).",
    ["event"],
)
paused = Gauge(
    f"{PREFIX}_paused",
    "1 while consumption is paused because too much is in flight (backpressure).",
    multiprocess_mode="livemax",
)
consumer_lag = Gauge(
    f"{PREFIX}_consumer_lag",
    "Kafka records behind the end of the partition: high watermark (last stable offset under "
    "read_committed) minus the stored offset (everything below it is delivered or dead-lettered), "
    "else minus the committed offset. From librdkafka statistics, per assigned partition.",
    ["topic", "partition"],
    multiprocess_mode="livemax",
)
committed_offset = Gauge(
    f"{PREFIX}_committed_offset",
    "Last committed offset (the next offset to read after a restart), per assigned partition.",
    ["topic", "partition"],
    multiprocess_mode="livemax",
)
last_processed_timestamp = Gauge(
    f"{PREFIX}_last_processed_record_timestamp_seconds",
    "Kafka timestamp of the newest record finished (delivered, dead-lettered or filtered), per "
    "partition; time() minus this is the partition's lag in time.",
    ["topic", "partition"],
    multiprocess_mode="livemax",
)
commits = Counter(f"{PREFIX}_offset_commits_total", "Offset commits by outcome.", ["outcome"])

# librdkafka statistics (consumer/kafka_stats.py)
kafka_broker_rtt_avg = Gauge(
    f"{PREFIX}_kafka_broker_rtt_avg_seconds",
    "Average broker round-trip time over the last statistics window (fetch requests include "
    "the broker's fetch.wait.max.ms on idle partitions).",
    ["broker"],
    multiprocess_mode="livemax",
)
kafka_broker_rtt_p99 = Gauge(
    f"{PREFIX}_kafka_broker_rtt_p99_seconds",
    "99th percentile broker round-trip time over the last statistics window.",
    ["broker"],
    multiprocess_mode="livemax",
)
kafka_broker_up = Gauge(
    f"{PREFIX}_kafka_broker_up",
    "1 while the connection to this broker is up.",
    ["broker"],
    multiprocess_mode="livemax",
)
kafka_fetch_queue_records = Gauge(
    f"{PREFIX}_kafka_fetch_queue_records",
    "Kafka records fetched by librdkafka and not yet handed to the poll loop (one queue for all partitions).",
    multiprocess_mode="livesum",
)
kafka_fetch_queue_bytes = Gauge(
    f"{PREFIX}_kafka_fetch_queue_bytes",
    "Bytes fetched by librdkafka and not yet handed to the poll loop (one queue for all partitions).",
    multiprocess_mode="livesum",
)

# ---------------------------------------------------------------------------------------------
# Decode, route, transform

records_decoded = Counter(f"{PREFIX}_records_decoded_total", "Kafka records decoded.", ["topic"])
decode_failures = Counter(
    f"{PREFIX}_decode_failures_total", "Kafka records that could not be decoded, by reason.", ["reason"]
)
decode_holds = Counter(
    f"{PREFIX}_decode_holds_total",
    "Times a partition was held (re-read later, never dead-lettered) because the Schema Registry"
    " could not say what a schema id is, by reason.",
    ["reason"],
)
records_transformed = Counter(
    f"{PREFIX}_records_transformed_total",
    "CleverTap records produced by the transform, per destination.",
    ["destination"],
)
events_rejected = Counter(
    f"{PREFIX}_events_rejected_total",
    "Events refused before delivery (unknown destination, invalid event), by stage and reason.",
    ["stage", "reason"],
)
events_filtered = Counter(
    f"{PREFIX}_events_filtered_total",
    "Events skipped on purpose (not an error), by destination and reason: event_filter, "
    "integrations_disabled, consent_denied, not_replayed.",
    ["destination", "reason"],
)
transform_fixes = Counter(
    f"{PREFIX}_transform_fixes_total",
    "Fields the default profile fixed or dropped so CleverTap accepts the record, by check.",
    ["kind", "action"],
)

deletion_requests = Counter(
    f"{PREFIX}_deletion_requests_total",
    "User-deletion (regulation) requests finished, by outcome: deleted or dead_lettered.",
    ["outcome"],
)
deleted_ids = Counter(
    f"{PREFIX}_deleted_ids_total", "User ids (userIds and cleverTapIds) CleverTap was asked to delete."
)
deletion_calls = Counter(
    f"{PREFIX}_deletion_calls_total",
    "Delete Profile API answers (POST /1/delete/profiles.json), by account and HTTP status.",
    ["account", "status"],
)

# ---------------------------------------------------------------------------------------------
# Batch and deliver

batch_records = Histogram(
    f"{PREFIX}_batch_size_records",
    "CleverTap records per upload request (CleverTap allows 1000, 100 for device tokens).",
    buckets=(1, 10, 50, 100, 250, 500, 750, 1000),
)
batch_bytes = Histogram(
    f"{PREFIX}_batch_size_bytes",
    "Body bytes per upload request.",
    buckets=(1024, 16384, 65536, 262144, 524288, 1048576, 2097152, 4194304, 8388608),
)
batches_sent = Counter(
    f"{PREFIX}_batches_sent_total",
    "Upload batches by final outcome after retries: success, partial (some records rejected), failed.",
    ["account", "outcome"],
)
http_responses = Counter(
    f"{PREFIX}_http_responses_total", "CleverTap HTTP responses by status class.", ["status_class"]
)
upload_responses = Counter(
    f"{PREFIX}_upload_responses_total",
    "CleverTap HTTP responses per account and exact status (401/403: bad passcode or wrong region; "
    "429: throttled).",
    ["account", "code"],
)
http_request_duration = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "CleverTap request duration per attempt that got a response.",
    ["status_class"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
http_request_errors = Counter(
    f"{PREFIX}_http_request_errors_total",
    "Request attempts that got no HTTP response, by error kind.",
    ["error"],
)
retries = Counter(f"{PREFIX}_delivery_retries_total", "Retried upload attempts by reason.", ["reason"])
records_delivered = Counter(
    f"{PREFIX}_records_delivered_total", "CleverTap records CleverTap accepted.", ["account"]
)
clevertap_record_errors = Counter(
    f"{PREFIX}_clevertap_record_errors_total",
    "Per-record errors in CleverTap replies (unprocessed records), by CleverTap code.",
    ["code"],
)
in_flight_requests = Gauge(
    f"{PREFIX}_in_flight_requests",
    "Upload requests in flight, per account.",
    ["account"],
    multiprocess_mode="livesum",
)
concurrency_limit = Gauge(
    f"{PREFIX}_concurrency_limit",
    "Adaptive limit on concurrent requests per account (at most 15, lowered on 429).",
    ["account"],
    multiprocess_mode="livesum",
)
auth_breaker_open = Gauge(
    f"{PREFIX}_auth_breaker_open",
    "1 while the account's breaker is open after a 401/403: its uploads stop except one probe "
    "per interval; records are held or dead-lettered as auth_failed, per destination.",
    ["account"],
    multiprocess_mode="livemax",
)
end_to_end_latency = Histogram(
    f"{PREFIX}_end_to_end_latency_seconds",
    "Kafka record timestamp to CleverTap acceptance, per CleverTap record.",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
)
last_delivery_timestamp = Gauge(
    f"{PREFIX}_last_successful_delivery_timestamp_seconds",
    "Unix time of the last upload CleverTap accepted (0: none since start).",
    multiprocess_mode="max",
)

# ---------------------------------------------------------------------------------------------
# Flow control, completion and DLQ

in_flight_records = Gauge(
    f"{PREFIX}_in_flight_records",
    "Kafka records read but not yet finished (delivered or dead-lettered).",
    multiprocess_mode="livesum",
)
in_flight_bytes = Gauge(
    f"{PREFIX}_in_flight_bytes",
    "Bytes of Kafka records read but not yet finished.",
    multiprocess_mode="livesum",
)
rewinds = Counter(
    f"{PREFIX}_partition_rewinds_total",
    "Times a partition was read again from an earlier offset to process messages deferred for "
    "an account that has room again.",
)
account_in_flight_records = Gauge(
    f"{PREFIX}_account_in_flight_records",
    "Kafka records in flight per CleverTap account (its budget: MAX_IN_FLIGHT_RECORDS_PER_ACCOUNT).",
    ["account"],
    multiprocess_mode="livesum",
)
account_deferred_records = Gauge(
    f"{PREFIX}_account_deferred_records",
    "Kafka records deferred because their account's in-flight budget is full: re-read from Kafka "
    "once it has room, while other accounts' records in the same partitions flow.",
    ["account"],
    multiprocess_mode="livesum",
)
records_finished = Counter(
    f"{PREFIX}_records_finished_total",
    "Kafka records finished, so their offset may be committed: every CleverTap record made from it "
    "delivered, or the record dead-lettered, or filtered on purpose.",
    ["outcome"],
)
dead_lettered = Counter(
    f"{PREFIX}_dlq_records_total",
    "Kafka records written to the DLQ and acknowledged by the broker, by stage and reason.",
    ["stage", "reason"],
)
dlq_publish_failures = Counter(
    f"{PREFIX}_dlq_publish_failures_total", "DLQ writes the broker did not acknowledge."
)

# ---------------------------------------------------------------------------------------------
# Process

ready = Gauge(
    f"{PREFIX}_ready",
    "1 while /readyz answers 200: partitions assigned (or none to get), broker reachable, not stopping.",
    multiprocess_mode="livemin",
)
build_info = Info(f"{PREFIX}_build", "Versions of the running service and its Kafka client.")
config_reloads = Counter(
    f"{PREFIX}_config_reloads_total",
    "Destinations file reloads (SIGHUP or a changed file) by outcome: applied, or invalid (old kept).",
    ["outcome"],
)
config_last_reload_successful = Gauge(
    f"{PREFIX}_config_last_reload_successful",
    "1 when the last destinations reload was applied (or none was tried), 0 when it was invalid.",
    multiprocess_mode="livemin",
)


# ---------------------------------------------------------------------------------------------
# Helpers


def status_class(status: int) -> str:
    """The bounded `status_class` label for an HTTP status (`2xx` … `5xx`, else `other`)."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


def status_code(status: int) -> str:
    """The bounded `code` label for an HTTP status: the number, or `other` for nonsense values."""
    return str(status) if 100 <= status <= 599 else "other"


def observe_ages(histogram: Histogram, now_ms: float, stamps_ms: Iterable[int | None]) -> None:
    """Observe each record's age, `max(0, now_ms - stamp) / 1000` seconds, as `observe` would
    one by one (a stamp of None or 0 is skipped), in C loops and with one lock per bucket.

    The delivery thread observes the end-to-end latency of every CleverTap record it delivers
    (a thousand per upload); a Python loop over them cost about a microsecond a record of GIL
    time taken from the poll thread. An age falls in the first bucket whose bound it does not
    exceed: `now - stamp <= bound * 1000` is `-stamp <= bound * 1000 - now`, so each stamp's bucket
    is one `bisect` into those cut-offs, which `map` runs without Python bytecode per record.
    prometheus_client has no bulk observe, so this counts into the histogram's own bucket
    values (`_upper_bounds`, `_buckets`, `_sum`; its `observe` does the same per value);
    tests/observability/test_metrics.py checks the samples equal one `observe` per age."""
    stamps = list(filter(None, stamps_ms))
    if not stamps:
        return
    if max(stamps) > now_ms:  # a stamp from the future (producer clock ahead): ages clamp to 0
        ages = [max(0.0, now_ms - s) / 1000 for s in stamps]
        cuts = histogram._upper_bounds  # ascending, the last one +Inf
        slots = Tally(map(partial(bisect.bisect_left, cuts), ages))
        total = sum(ages)
    else:
        cuts = [bound * 1000 - now_ms for bound in histogram._upper_bounds]
        slots = Tally(map(partial(bisect.bisect_left, cuts), map(operator.neg, stamps)))
        total = (now_ms * len(stamps) - sum(stamps)) / 1000
    histogram._sum.inc(total)
    buckets = histogram._buckets
    for i, n in slots.items():
        buckets[i].inc(n)


def observe_response(account: str, status: int, seconds: float) -> None:
    """Count one CleverTap HTTP response everywhere it belongs, so the aggregate and the
    per-account series never disagree."""
    cls = status_class(status)
    http_responses.labels(status_class=cls).inc()
    upload_responses.labels(account=account, code=status_code(status)).inc()
    http_request_duration.labels(status_class=cls).observe(seconds)


def initialise_series(metric: Counter | Gauge | Histogram, **label_values: Iterable[str]) -> None:
    """Create every combination of the given label values at 0 (counters, histograms) or at the
    gauge's current value, so `rate()`/`increase()` see the first event and absent series never
    hide a problem. Label names must be exactly the metric's."""
    names = list(label_values)
    for combo in itertools.product(*(tuple(label_values[n]) for n in names)):
        metric.labels(**dict(zip(names, combo, strict=True)))


def initialise(
    *,
    topics: Iterable[str] = (),
    accounts: Iterable[str] = (),
    destinations: Iterable[str] = (),
    reasons: Mapping[str, Iterable[str]] | None = None,
    retry_reasons: Iterable[str] = (),
    http_errors: Iterable[str] = (),
    fix_kinds: Iterable[str] = (),
    concurrency: int | None = None,
) -> None:
    """Pre-create the labelled series dashboards and alerts rely on, and set build info.

    Call once at start-up, after the destinations file is loaded: `accounts` and `destinations`
    come from it, `topics` from settings. `reasons` maps a stage (decode, route, transform,
    deliver) to its failure reasons; `retry_reasons` and `http_errors` are the deliver stage's
    retry and no-response vocabularies; `fix_kinds` are the default profile's pre-flight check
    names. Each stage owns its vocabulary and the caller passes it in, so a label value here is
    always one the code emits. `concurrency`, when given, is the initial
    per-account request limit. Safe to call again (e.g. on a config reload).
    """
    topics, accounts, destinations = tuple(topics), tuple(accounts), tuple(destinations)
    merged: dict[str, set[str]] = {stage: set() for stage in STAGES}
    for stage, values in (reasons or {}).items():
        merged.setdefault(stage, set()).update(values)

    initialise_series(records_consumed, topic=topics)
    initialise_series(consumed_bytes, topic=topics)
    initialise_series(records_decoded, topic=topics)
    initialise_series(assigned_partitions, topic=topics)
    initialise_series(rebalances, event=REBALANCE_EVENTS)
    initialise_series(commits, outcome=COMMIT_OUTCOMES)

    initialise_series(decode_failures, reason=sorted(merged["decode"]))
    initialise_series(decode_holds, reason=sorted(TRANSIENT_REASONS))
    for stage in ("route", "transform"):
        initialise_series(events_rejected, stage=[stage], reason=sorted(merged[stage]))
    for stage, stage_reasons in merged.items():
        initialise_series(dead_lettered, stage=[stage], reason=sorted(stage_reasons))
    initialise_series(records_transformed, destination=destinations)
    initialise_series(events_filtered, destination=destinations, reason=FILTER_REASONS)
    initialise_series(transform_fixes, kind=tuple(fix_kinds), action=FIX_ACTIONS)
    initialise_series(deletion_requests, outcome=("deleted", "dead_lettered"))
    initialise_series(deletion_calls, account=accounts, status=UPLOAD_CODES)

    initialise_series(http_responses, status_class=STATUS_CLASSES)
    initialise_series(http_request_duration, status_class=STATUS_CLASSES)
    initialise_series(http_request_errors, error=tuple(http_errors))
    initialise_series(retries, reason=tuple(retry_reasons))
    initialise_series(records_finished, outcome=FINISH_OUTCOMES)
    initialise_series(records_delivered, account=accounts)
    initialise_series(batches_sent, account=accounts, outcome=BATCH_OUTCOMES)
    initialise_series(upload_responses, account=accounts, code=UPLOAD_CODES)
    initialise_series(in_flight_requests, account=accounts)
    initialise_series(account_in_flight_records, account=accounts)
    initialise_series(account_deferred_records, account=accounts)
    initialise_series(auth_breaker_open, account=accounts)
    initialise_series(config_reloads, outcome=RELOAD_OUTCOMES)
    config_last_reload_successful.set(1)
    if concurrency is not None:
        for account in accounts:
            concurrency_limit.labels(account=account).set(concurrency)

    set_build_info()


def set_build_info() -> None:
    """Publish the versions that matter when comparing two pods' behaviour."""
    import confluent_kafka

    from . import __version__

    build_info.info(
        {
            "version": __version__,
            "python": platform.python_version(),
            "confluent_kafka": importlib.metadata.version("confluent-kafka"),
            "librdkafka": str(confluent_kafka.libversion()[0]),
        }
    )


# At import, not only in initialise(): the dashboard's job/instance variables are read from
# this series, so a process that never calls initialise() must still be selectable.
set_build_info()


def forget_partitions(partitions: Iterable[tuple[str, int]]) -> None:
    """Drop per-partition series for partitions this consumer no longer owns.

    Call on revocation and loss: otherwise the old owner keeps exporting a frozen lag and offset
    next to the new owner's live ones, and `sum(consumer_lag)` counts the partition twice.
    """
    for topic, partition in partitions:
        for gauge in (consumer_lag, committed_offset, last_processed_timestamp):
            remove_series(gauge, topic, str(partition))


def remove_series(gauge: Gauge, *label_values: str) -> None:
    """Drop one labelled series of a gauge, also under WORKERS > 1.

    In prometheus_client's multiprocess mode `remove()` forgets the series in this process only:
    its memory-mapped file keeps the last value, which the supervisor would go on merging (a
    revoked partition's frozen lag next to its new owner's). Zeroing it first makes the stale
    entry neutral for the `livemax`/`livesum` gauges it applies to.
    """
    if MULTIPROCESS:  # where `remove()` only warns that it is not implemented
        gauge.labels(*label_values).set(0)
        return
    with contextlib.suppress(KeyError):
        gauge.remove(*label_values)

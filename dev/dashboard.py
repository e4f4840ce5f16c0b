"""The Grafana dashboard, as code: `python dev/dashboard.py` rewrites dashboards/clevertap-consumer.json.

The JSON file is what Grafana provisioning and the Helm chart load; this script is where it is
edited. Writing panels as data keeps the conventions uniform (every query uses the `datasource`
variable and the job/instance filters, every rate uses `$__rate_interval`, every panel has a
unit and a description that says what to do about it) and the layout automatic. The test suite
fails when the committed JSON differs from what this script produces, and checks every query
against the metrics the service really exports.

    python dev/dashboard.py           # rewrite the JSON
    python dev/dashboard.py --check   # exit 1 if the JSON is out of date
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "dashboards" / "clevertap-consumer.json"

UID = "clevertap-consumer"
DS = {"type": "prometheus", "uid": "${datasource}"}
# cluster, namespace and pod are empty outside Kubernetes (or with one cluster): their "All"
# is `.*`, which also matches a missing label; job and instance always exist (`.+`).
SEL = 'cluster=~"$cluster", namespace=~"$namespace", job=~"$job", pod=~"$pod", instance=~"$instance"'
P = "clevertap_consumer_"


def rate(metric: str, extra: str = "", fn: str = "rate") -> str:
    """`fn(metric{filters}[$__rate_interval])`, the only way counters are read on this dashboard."""
    matchers = f"{SEL}, {extra}" if extra else SEL
    return f"{fn}({P}{metric}{{{matchers}}}[$__rate_interval])"


def gauge(metric: str, extra: str = "") -> str:
    matchers = f"{SEL}, {extra}" if extra else SEL
    return f"{P}{metric}{{{matchers}}}"


def quantile(q: float, histogram: str, by: str = "") -> str:
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) ({rate(histogram + '_bucket')}))"


@dataclass
class Target:
    expr: str
    legend: str


@dataclass
class Panel:
    title: str
    unit: str
    targets: list[Target]
    description: str
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    overrides: list[dict[str, Any]] = field(default_factory=list)
    stack: bool = False


@dataclass
class Row:
    title: str
    panels: list[Panel]


AUTH_FAILURES = rate("upload_responses_total", 'code=~"401|403"', fn="increase")
THROTTLED = rate("upload_responses_total", 'code="429"')
REBALANCE_ANNOTATION = f'sum(increase({P}rebalances_total{{{SEL}, event=~"assigned|lost"}}[1m])) > 0'


def T(expr: str, legend: str = "") -> Target:  # noqa: N802 (reads like a table of queries)
    return Target(expr, legend)


ROWS: list[Row] = [
    Row(
        "Overview",
        [
            Panel(
                "Ready / up replicas",
                "none",
                [T(f"sum({gauge('ready')})", "ready"), T(f"sum(up{{{SEL}}})", "up")],
                "Replicas answering /readyz with 200 versus replicas Prometheus can scrape. Ready below "
                "up: see the replica's /readyz reason (waiting for assignment, broker unreachable, "
                "shutting down).",
                kind="stat",
                width=6,
                height=4,
            ),
            Panel(
                "Consumer lag",
                "short",
                [T(f"sum({gauge('consumer_lag')})", "records")],
                "Kafka records not yet finished, all partitions. Growing: delivery is slower than "
                "the producers (see Delivery) or the loop is paused (see Kafka).",
                kind="stat",
                width=6,
                height=4,
            ),
            Panel(
                "Since last successful delivery",
                "s",
                [T(f"time() - max({gauge('last_successful_delivery_timestamp_seconds')} > 0)", "age")],
                "Seconds since CleverTap last accepted an upload, newest across replicas. High while lag "
                "is above zero means nothing reaches CleverTap: check HTTP responses and 401/403.",
                kind="stat",
                width=6,
                height=4,
            ),
            Panel(
                "Dead-lettered",
                "cps",
                [T(f"sum({rate('dlq_records_total')})", "records/s")],
                "Kafka records written to the DLQ per second. Inspect them with "
                "`clevertap-consumer dlq inspect`; the Errors row says which stage and reason.",
                kind="stat",
                width=6,
                height=4,
            ),
            Panel(
                "Throughput",
                "cps",
                [
                    T(f"sum({rate('records_consumed_total')})", "consumed (Kafka records)"),
                    T(f"sum({rate('records_finished_total')})", "finished (Kafka records)"),
                    T(f"sum({rate('records_delivered_total')})", "delivered (CleverTap records)"),
                    T(f"sum({rate('dlq_records_total')})", "dead-lettered (Kafka records)"),
                    T(f"sum({rate('events_filtered_total')})", "filtered on purpose"),
                ],
                "Records per second at each end of the flow. Consumed above finished for long means "
                "records pile up in flight; dead-lettered above zero needs a look.",
                width=24,
            ),
        ],
    ),
    Row(
        "Kafka",
        [
            Panel(
                "Consumer lag per partition",
                "short",
                [T(f"sum by (topic, partition) ({gauge('consumer_lag')})", "{{topic}}/{{partition}}")],
                "High watermark minus the stored (done) offset, from librdkafka statistics. One "
                "partition far above the rest: a hot key or a stuck batch on that partition.",
            ),
            Panel(
                "Time since the newest finished record",
                "s",
                [
                    T(
                        f"time() - max by (topic, partition) ({gauge('last_processed_record_timestamp_seconds')})",
                        "{{topic}}/{{partition}}",
                    )
                ],
                "Age of the newest record finished per partition: lag in time. Steadily growing on an "
                "active topic means that partition is not progressing.",
            ),
            Panel(
                "Consumed bytes",
                "Bps",
                [T(f"sum by (topic) ({rate('consumed_bytes_total')})", "{{topic}}")],
                "Kafka record value bytes polled per second, per topic.",
                width=8,
            ),
            Panel(
                "Assigned partitions",
                "short",
                [T(f"sum by (instance) ({gauge('assigned_partitions')})", "{{instance}}")],
                "Partitions each replica owns. A replica with 0 for long is idle (more replicas than "
                "partitions) or stuck joining the group.",
                width=8,
            ),
            Panel(
                "Rebalances",
                "short",
                [T(f"sum by (event) ({rate('rebalances_total', fn='increase')})", "{{event}}")],
                "Assignment changes. Frequent 'lost' means sessions expire: the poll loop stalls or "
                "the broker is unreachable.",
                width=8,
            ),
            Panel(
                "Offset commits",
                "ops",
                [T(f"sum by (outcome) ({rate('offset_commits_total')})", "{{outcome}}")],
                "Commits per second by outcome. Failures mean re-delivery of the uncommitted range "
                "after a restart (duplicates, not loss).",
                width=8,
            ),
            Panel(
                "Paused (backpressure)",
                "bool_yes_no",
                [T(f"max by (instance) ({gauge('paused')})", "{{instance}}")],
                "1 while a replica stopped fetching because too much is in flight. Long pauses mean "
                "CleverTap is slower than Kafka: see Delivery.",
                width=8,
            ),
            Panel(
                "In-flight Kafka records",
                "short",
                [
                    T(f"sum by (instance) ({gauge('in_flight_records')})", "in flight {{instance}}"),
                    T(f"sum by (instance) ({gauge('kafka_fetch_queue_records')})", "prefetched {{instance}}"),
                ],
                "Records read but not finished (bounded by MAX_IN_FLIGHT_RECORDS), and records "
                "librdkafka fetched that the loop has not taken yet.",
                width=8,
            ),
            Panel(
                "In-flight bytes",
                "bytes",
                [
                    T(f"sum by (instance) ({gauge('in_flight_bytes')})", "in flight {{instance}}"),
                    T(f"sum by (instance) ({gauge('kafka_fetch_queue_bytes')})", "prefetched {{instance}}"),
                ],
                "Memory held by unfinished records (bounded by MAX_IN_FLIGHT_BYTES) and by "
                "librdkafka's fetch queue.",
                width=8,
            ),
            Panel(
                "Broker round-trip time",
                "s",
                [
                    T(f"max by (broker) ({gauge('kafka_broker_rtt_avg_seconds')})", "avg {{broker}}"),
                    T(f"max by (broker) ({gauge('kafka_broker_rtt_p99_seconds')})", "p99 {{broker}}"),
                ],
                "librdkafka's request round trip per broker. Fetches on idle partitions wait up to "
                "fetch.wait.max.ms, so an idle cluster shows about that value.",
                width=8,
            ),
        ],
    ),
    Row(
        "Errors and dead letters",
        [
            Panel(
                "Dead-lettered by stage and reason",
                "cps",
                [T(f"sum by (stage, reason) ({rate('dlq_records_total')})", "{{stage}}: {{reason}}")],
                "Kafka records written to the DLQ. decode: bad bytes or schema; route: unknown "
                "destinationId; transform: invalid event; deliver: CleverTap refused or retries ran out.",
            ),
            Panel(
                "DLQ publish failures",
                "short",
                [
                    T(
                        f"sum by (instance) ({rate('dlq_publish_failures_total', fn='increase')})",
                        "{{instance}}",
                    )
                ],
                "DLQ writes the broker did not acknowledge. The offset cannot move past such a record: "
                "lag grows until the DLQ topic is writable again.",
            ),
            Panel(
                "Decode failures by reason",
                "cps",
                [T(f"sum by (reason) ({rate('decode_failures_total')})", "{{reason}}")],
                "Records that are not valid Avro for their schema, or whose schema cannot be fetched.",
                width=8,
            ),
            Panel(
                "Rejected events by stage and reason",
                "cps",
                [T(f"sum by (stage, reason) ({rate('events_rejected_total')})", "{{stage}}: {{reason}}")],
                "Events refused before delivery (each also goes to the DLQ).",
                width=8,
            ),
            Panel(
                "CleverTap per-record errors by code",
                "cps",
                [T(f"sum by (code) ({rate('clevertap_record_errors_total')})", "code {{code}}")],
                "Records CleverTap returned as unprocessed, by CleverTap's error code (see "
                "CleverTap's API errors page).",
                width=8,
            ),
            Panel(
                "Fields fixed by the default profile",
                "cps",
                [T(f"sum by (kind, action) ({rate('transform_fixes_total')})", "{{kind}} {{action}}")],
                "Pre-flight checks that fixed or dropped a field so CleverTap accepts the record.",
            ),
            Panel(
                "Filtered events by destination",
                "cps",
                [T(f"sum by (destination) ({rate('events_filtered_total')})", "{{destination}}")],
                "Events skipped on purpose by a destination's allow/deny list (not an error).",
            ),
        ],
    ),
    Row(
        "Delivery to CleverTap",
        [
            Panel(
                "End-to-end latency (event time → accepted)",
                "s",
                [
                    T(quantile(0.5, "end_to_end_latency_seconds"), "p50"),
                    T(quantile(0.99, "end_to_end_latency_seconds"), "p99"),
                ],
                "From the Kafka record's timestamp to CleverTap's acceptance. Includes time spent "
                "waiting in Kafka, so it rises with lag and during replays.",
            ),
            Panel(
                "CleverTap request duration",
                "s",
                [
                    T(quantile(0.5, "http_request_duration_seconds", "status_class"), "p50 {{status_class}}"),
                    T(
                        quantile(0.99, "http_request_duration_seconds", "status_class"),
                        "p99 {{status_class}}",
                    ),
                ],
                "Per attempt, by response class. Slow 2xx with many in-flight requests: CleverTap is "
                "the bottleneck.",
            ),
            Panel(
                "HTTP responses and errors",
                "reqps",
                [
                    T(f"sum by (status_class) ({rate('http_responses_total')})", "{{status_class}}"),
                    T(f"sum by (error) ({rate('http_request_errors_total')})", "no response: {{error}}"),
                ],
                "CleverTap responses by class, and attempts that got no response (timeouts, refused "
                "connections, TLS).",
            ),
            Panel(
                "401/403 per account",
                "short",
                [
                    T(
                        f"sum by (account, code) ({AUTH_FAILURES})",
                        "{{account}} {{code}}",
                    )
                ],
                "Any value here means a wrong or rotated passcode, or a destination whose region does "
                "not match the account. These records are not retried: they go to the DLQ.",
            ),
            Panel(
                "429 throttling and concurrency limit per account",
                "reqps",
                [
                    T(
                        f"sum by (account) ({THROTTLED})",
                        "429/s {{account}}",
                    ),
                    T(f"min by (account) ({gauge('concurrency_limit')})", "limit {{account}}"),
                ],
                "429 answers per second and the adaptive request limit (right axis) per account. The "
                "limit drops on 429 and recovers slowly; many replicas share CleverTap's 15 per account.",
                overrides=[
                    {
                        "matcher": {"id": "byFrameRefID", "options": "B"},
                        "properties": [
                            {"id": "unit", "value": "short"},
                            {"id": "custom.axisPlacement", "value": "right"},
                        ],
                    }
                ],
            ),
            Panel(
                "In-flight requests per account",
                "short",
                [T(f"sum by (account) ({gauge('in_flight_requests')})", "{{account}}")],
                "Upload requests waiting for CleverTap, summed over replicas (CleverTap allows 15 "
                "per account).",
            ),
            Panel(
                "Records waiting per account",
                "short",
                [
                    T(f"sum by (account) ({gauge('account_in_flight_records')})", "{{account}} in flight"),
                    T(f"sum by (account) ({gauge('account_deferred_records')})", "{{account}} deferred"),
                ],
                "Kafka records in flight per CleverTap account, against its budget "
                "(MAX_IN_FLIGHT_RECORDS_PER_ACCOUNT), and records deferred for it: read again once the "
                "account has room, while the other accounts flow. Deferred above 0 for long is an "
                "account that is slow, throttled, hung or held (alert ClevertapConsumerAccountDeferring).",
                width=24,
            ),
            Panel(
                "Batches by outcome",
                "ops",
                [T(f"sum by (outcome) ({rate('batches_sent_total')})", "{{outcome}}")],
                "Upload batches by final outcome: delivered, partial (some records rejected), failed "
                "(all records to the DLQ), unfinished (cut off by shutdown; redelivered later).",
                width=8,
            ),
            Panel(
                "Retries by reason",
                "ops",
                [T(f"sum by (reason) ({rate('delivery_retries_total')})", "{{reason}}")],
                "Retried attempts: throttled (429), server_error (5xx), timeout, connection, "
                "record_retryable (CleverTap 555).",
                width=8,
            ),
            Panel(
                "Records delivered per account",
                "cps",
                [T(f"sum by (account) ({rate('records_delivered_total')})", "{{account}}")],
                "CleverTap records accepted per second.",
                width=8,
            ),
            Panel(
                "Batch size (records)",
                "short",
                [
                    T(quantile(0.5, "batch_size_records"), "p50"),
                    T(quantile(0.99, "batch_size_records"), "p99"),
                    T(
                        f"sum({rate('batch_size_records_sum')}) / sum({rate('batch_size_records_count')})",
                        "mean",
                    ),
                ],
                "Records per upload. Small batches at high volume: BATCH_LINGER_MS too low.",
            ),
            Panel(
                "Batch size (bytes)",
                "bytes",
                [
                    T(quantile(0.5, "batch_size_bytes"), "p50"),
                    T(quantile(0.99, "batch_size_bytes"), "p99"),
                ],
                "Upload body size. Near BATCH_MAX_BYTES: records are large; batches close on bytes.",
            ),
        ],
    ),
]


# The process itself (prometheus_client's process collector): one core at full speed, memory
# bounded by MAX_IN_FLIGHT_BYTES, and restarts seen as a new process start time.
ROWS.append(
    Row(
        "Process",
        [
            Panel(
                "CPU (cores)",
                "short",
                [
                    T(
                        f"sum by (instance) (rate(process_cpu_seconds_total{{{SEL}}}[$__rate_interval]))",
                        "{{instance}}",
                    )
                ],
                "Cores used per pod. Near 1.0: the single processing thread is saturated; scale out "
                "with pods (at most one per partition), not with a CPU limit.",
                width=8,
            ),
            Panel(
                "Memory (resident)",
                "bytes",
                [T(f"max by (instance) (process_resident_memory_bytes{{{SEL}}})", "{{instance}}")],
                "Resident memory per pod. It follows MAX_IN_FLIGHT_BYTES plus the Kafka prefetch; "
                "near the container limit means an OOM kill is next.",
                width=8,
            ),
            Panel(
                "Restarts",
                "short",
                [
                    T(
                        f"sum by (instance) (changes(process_start_time_seconds{{{SEL}}}[$__rate_interval]))",
                        "{{instance}}",
                    )
                ],
                "Process starts per pod in each interval. Any: check kubectl logs --previous "
                "(a configuration error names its variable; OOM kills show in the pod's last state).",
                width=8,
            ),
        ],
    )
)


def _panel_json(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "datasource": DS,
            "expr": t.expr,
            "legendFormat": t.legend,
            "range": True,
            "instant": False,
            "refId": chr(ord("A") + i),
        }
        for i, t in enumerate(panel.targets)
    ]
    out: dict[str, Any] = {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DS,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": panel.overrides},
    }
    if panel.kind == "stat":
        out["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        }
    else:
        out["fieldConfig"]["defaults"]["custom"] = {
            "drawStyle": "line",
            "fillOpacity": 10,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": False,
        }
        out["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    return out


def _query_variable(name: str, label: str, query: str, all_value: str = ".+") -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "includeAll": True,
        "allValue": all_value,
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "regex": "",
    }


def build() -> dict[str, Any]:
    """The dashboard as a dict, laid out row by row, panels flowing left to right."""
    panels: list[dict[str, Any]] = []
    pid = 1
    y = 0
    for row in ROWS:
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        pid += 1
        y += 1
        x, line_height = 0, 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, line_height = 0, y + line_height, 0
            panels.append(_panel_json(panel, pid, x, y))
            pid += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height

    return {
        "uid": UID,
        "title": "clevertap-consumer",
        "description": "Kafka → CleverTap delivery: throughput, lag, errors, dead letters, CleverTap "
        "responses. Every panel's description says what to look at next.",
        "tags": ["clevertap-consumer", "kafka", "clevertap"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "refresh": "30s",
        "timezone": "utc",
        "links": [],
        "annotations": {
            "list": [
                {
                    "name": "Rebalances",
                    "datasource": DS,
                    "enable": True,
                    "iconColor": "orange",
                    "expr": REBALANCE_ANNOTATION,
                    "step": "1m",
                    "titleFormat": "Rebalance",
                    "textFormat": "partitions assigned or lost",
                }
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "refresh": 1,
                    "regex": "",
                },
                _query_variable("cluster", "Cluster", f"label_values({P}build_info, cluster)", ".*"),
                _query_variable(
                    "namespace",
                    "Namespace",
                    f'label_values({P}build_info{{cluster=~"$cluster"}}, namespace)',
                    ".*",
                ),
                _query_variable(
                    "job",
                    "Job",
                    f'label_values({P}build_info{{cluster=~"$cluster", namespace=~"$namespace"}}, job)',
                ),
                _query_variable(
                    "pod",
                    "Pod",
                    f'label_values({P}build_info{{cluster=~"$cluster", namespace=~"$namespace", job=~"$job"}}, pod)',
                    ".*",
                ),
                _query_variable(
                    "instance",
                    "Instance",
                    f'label_values({P}build_info{{namespace=~"$namespace", job=~"$job", pod=~"$pod"}}, instance)',
                ),
            ]
        },
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv == ["--check"]:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run python dev/dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""The Schema Registry down: records with a schema id not cached yet hold their partition
(never dead-lettered), the hold is counted, and the alert on it fires, judged by promtool
against series scraped from this very run (the registry answering 503), then resolves once
the registry is back and every record is delivered."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from consumer.codec import Encoder, Registry
from tests.support.schema_registry import running_registry
from tests.support.service import Bed, ServiceProcess

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
HOLDS = "clevertap_consumer_decode_holds_total"
ALERT = "ClevertapConsumerSchemaRegistryUnreachable"


def _scrape(service: ServiceProcess, scrapes: list[dict[str, float]]) -> None:
    scrapes.append(
        {dict(labels)["reason"]: v for (name, labels), v in service.metrics().items() if name == HOLDS}
    )


def test_registry_down_holds_partitions_counts_it_and_alerts(
    bed: Bed, promtool: Path, tmp_path: Path
) -> None:
    events = [
        {"type": "track", "event": "Signed Up", "userId": f"u{i}", "destinationId": "dest-one"}
        for i in range(40)
    ]
    with running_registry() as registry:
        encoder = Encoder(Registry.connect(registry.url), bed.topic)
        bed.kafka.produce(
            bed.topic, [encoder.encode(e) for e in events], keys=[e["userId"].encode() for e in events]
        )
        registry.fail_with(503)
        service = bed.service(SCHEMA_REGISTRY_URL=registry.url)
        service.wait_ready()
        scrapes: list[dict[str, float]] = []
        for _ in range(12):
            _scrape(service, scrapes)
            time.sleep(2)
        assert scrapes[-1]["registry_unavailable"] + scrapes[-1]["registry_error"] > 0
        assert bed.committed_total() == 0, "held, not skipped"
        assert bed.delivered_count() == 0
        registry.fail_with(None)
        bed.wait_committed_to_end(timeout=60)
        assert bed.delivered_count() == len(events)
        assert bed.dead_letters(1, timeout=2) == [], "never dead-lettered"
        for _ in range(8):
            _scrape(service, scrapes)
            time.sleep(1)
        assert service.terminate() == 0

    # One scrape per minute of promtool time (the alert's windows are minutes; the run seconds).
    series = [
        {
            "series": f'{HOLDS}{{job="clevertap-consumer", instance="svc", reason="{reason}"}}',
            "values": " ".join(str(int(s.get(reason, 0))) for s in scrapes),
        }
        for reason in sorted(scrapes[0])
    ]
    firing = {"severity": "warning", "job": "clevertap-consumer", "instance": "svc"}
    rules = yaml.safe_load((ROOT / "dashboards" / "alerts.yaml").read_text())["groups"]
    rule = next(r for g in rules for r in g["rules"] if r.get("alert") == ALERT)
    annotations = {k: v.replace("{{ $labels.instance }}", "svc") for k, v in rule["annotations"].items()}
    tests = {
        "rule_files": [str(ROOT / "dashboards" / "alerts.yaml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "2m", "alertname": ALERT, "exp_alerts": []},
                    {
                        "eval_time": "10m",
                        "alertname": ALERT,
                        "exp_alerts": [{"exp_labels": firing, "exp_annotations": annotations}],
                    },
                    {"eval_time": f"{len(scrapes) - 1}m", "alertname": ALERT, "exp_alerts": []},
                ],
            }
        ],
    }
    path = tmp_path / "registry_down_test.yaml"
    path.write_text(yaml.safe_dump(tests))
    done = subprocess.run(
        [str(promtool), "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr + "\n" + path.read_text()

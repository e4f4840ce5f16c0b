"""Alert rules: valid for Prometheus, unit-tested, actionable, and about series that exist."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from .conftest import ROOT
from .promql import metric_names

ALERTS = ROOT / "dashboards" / "alerts.yaml"
ALERT_TESTS = Path(__file__).with_name("alerts_test.yaml")
# Series Prometheus itself creates for every target.
PROMETHEUS_SERIES = {"up"}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _promtool(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], capture_output=True, text=True, check=False, cwd=ROOT)


def test_promtool_accepts_the_rules_file(promtool: Path) -> None:
    done = _promtool(promtool, "check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in done.stdout


def test_alert_unit_tests_pass(promtool: Path) -> None:
    done = _promtool(promtool, "test", "rules", str(ALERT_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_important_alerts_exist_and_are_unit_tested() -> None:
    names = {rule["alert"] for rule in _rules()}
    tested = {
        t["alertname"]
        for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for t in case["alert_rule_test"]
    }
    important = {
        "ClevertapConsumerDown",
        "ClevertapConsumerAbsent",
        "ClevertapConsumerNotReady",
        "ClevertapConsumerLagGrowing",
        "ClevertapConsumerNoDelivery",
        "ClevertapConsumerDeadLetterRateHigh",
        "ClevertapConsumerAuthFailures",
        "ClevertapConsumerHighRetryRate",
    }
    assert important <= names
    assert important <= tested


def test_every_alert_says_how_bad_what_happened_and_what_to_do() -> None:
    for rule in _rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        for key in ("summary", "description", "runbook"):
            assert rule["annotations"].get(key, "").strip(), f"{rule['alert']}: no {key}"


def test_alerts_only_use_series_the_service_exports(exported_names: set[str]) -> None:
    for rule in _rules():
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        unknown = used - exported_names - PROMETHEUS_SERIES
        assert not unknown, f"{rule['alert']} uses {sorted(unknown)}, which /metrics does not export"

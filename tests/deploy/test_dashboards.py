"""The chart's copies of the dashboard and alert rules: in sync with dashboards/, valid, and only
querying metrics the service really exports (consumer/metrics.py)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric

import consumer.metrics  # noqa: F401  (registers every metric)

from .helpers import CHART, ROOT

CHART_DASHBOARD = CHART / "dashboards" / "clevertap-consumer.json"
CHART_RULES = CHART / "rules" / "alerts.yaml"
SYNC_HINT = "run `python dev/deploy_tools.py sync-dashboards` and commit the chart copy"


def _deploy_tools() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_tools", ROOT / "dev" / "deploy_tools.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _exported_names() -> set[str]:
    """Series names the service's registry exports, including the suffixes Prometheus sees."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "info": ("_info",),
        "summary": ("", "_count", "_sum", "_created"),
    }
    names: set[str] = set()
    family: Metric
    for family in REGISTRY.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def _selectors(expr: str) -> list[str]:
    """Metric names in a PromQL expression (raises ValueError when it does not parse)."""
    names: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.append(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def _grafana_to_promql(expr: str) -> str:
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


# --------------------------------------------------------------------------- sync with dashboards/


@pytest.mark.parametrize(
    ("source", "copy"),
    [
        (ROOT / "dashboards" / "clevertap-consumer.json", CHART_DASHBOARD),
        (ROOT / "dashboards" / "alerts.yaml", CHART_RULES),
    ],
    ids=["dashboard", "alerts"],
)
def test_chart_copy_equals_the_repository_file(source: Path, copy: Path) -> None:
    """Helm's .Files only reads inside the chart, so the chart keeps copies of dashboards/ files.
    Until a dashboards/ file exists, the chart's placeholder stands in (and is checked below)."""
    assert copy.is_file()
    if source.is_file():
        assert copy.read_bytes() == source.read_bytes(), f"{copy.relative_to(ROOT)} differs: {SYNC_HINT}"


def test_sync_copies_only_existing_changed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = _deploy_tools()
    present, absent = tmp_path / "src.json", tmp_path / "missing.yaml"
    copy_a, copy_b = tmp_path / "chart" / "a.json", tmp_path / "chart" / "b.yaml"
    copy_a.parent.mkdir()
    present.write_text('{"uid": "new"}')
    copy_a.write_text('{"uid": "old"}')
    copy_b.write_text("groups: []")
    monkeypatch.setattr(tools, "DASHBOARD_COPIES", {present: copy_a, absent: copy_b})
    assert tools.sync_dashboards() == [copy_a]
    assert copy_a.read_text() == '{"uid": "new"}'
    assert copy_b.read_text() == "groups: []"
    assert tools.sync_dashboards() == []  # idempotent


# --------------------------------------------------------------------------- dashboard


def test_dashboard_follows_the_conventions() -> None:
    dashboard = json.loads(CHART_DASHBOARD.read_text())
    assert dashboard["uid"] == "clevertap-consumer"
    assert dashboard["title"]
    assert dashboard.get("id") is None  # a numeric id breaks provisioning into other instances
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    targets = [t for p in panels for t in p.get("targets", [])]
    assert targets
    for target in targets:
        assert target["datasource"]["uid"] == "${datasource}"


def test_dashboard_queries_parse_and_use_exported_metrics() -> None:
    exported = _exported_names()
    dashboard = json.loads(CHART_DASHBOARD.read_text())
    used: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            used |= set(_selectors(_grafana_to_promql(target["expr"])))
    assert used
    assert used <= exported, f"queried but never exported: {used - exported}"


# --------------------------------------------------------------------------- alert rules


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(CHART_RULES.read_text())
    assert list(data) == ["groups"]
    rules = [r for g in data["groups"] for r in g["rules"]]
    for group in data["groups"]:
        assert group["name"]
    return rules


def test_alert_rules_are_well_formed() -> None:
    rules = _rules()
    assert rules
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        assert promql_parser.parse_duration(rule["for"])


def test_alert_expressions_parse_and_use_exported_metrics() -> None:
    exported = _exported_names()
    for rule in _rules():
        names = _selectors(rule["expr"])
        assert names, rule["alert"]
        assert set(names) <= exported, f"{rule['alert']}: {set(names) - exported}"


def test_rendered_prometheus_rule_expressions_parse() -> None:
    """Rules added through values (metrics.prometheusRule.rules) are PromQL too."""
    from .helpers import render, scenario

    groups = render(scenario("monitoring")).one("PrometheusRule")["spec"]["groups"]
    exprs = [r["expr"] for g in groups for r in g["rules"]]
    assert len(exprs) >= 3
    for expr in exprs:
        assert _selectors(expr)


def test_metric_name_check_is_not_vacuous() -> None:
    exported = _exported_names()
    assert "clevertap_consumer_consumer_lag" in exported
    assert "clevertap_consumer_dead_lettered_total" in exported
    assert "clevertap_consumer_dead_lettered" not in exported  # counters are exported with _total
    with pytest.raises(ValueError, match="parenthesis"):
        _selectors("sum(rate(clevertap_consumer_dead_lettered_total[5m])")

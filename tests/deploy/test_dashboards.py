"""The chart's copies of the dashboard and alert rules stay byte-equal to dashboards/.

What the dashboard and rules contain (conventions, PromQL, exported series, promtool) is tested
once, on dashboards/, in tests/observability; equality carries those checks over to the chart.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import promql_parser
import pytest

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


def _selectors(expr: str) -> list[str]:
    """Metric names in a PromQL expression (raises ValueError when it does not parse)."""
    names: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.append(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


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


# --------------------------------------------------------------------------- chart-only rules


def test_rendered_prometheus_rule_expressions_parse() -> None:
    """Rules added through values (metrics.prometheusRule.rules) are PromQL too."""
    from .helpers import render, scenario

    groups = render(scenario("monitoring")).one("PrometheusRule")["spec"]["groups"]
    exprs = [r["expr"] for g in groups for r in g["rules"]]
    assert len(exprs) >= 3
    for expr in exprs:
        assert _selectors(expr)

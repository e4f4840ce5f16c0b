"""Reading PromQL the way Prometheus and Grafana do, for checks on the dashboard and alerts."""

from __future__ import annotations

import re

import promql_parser

# Grafana replaces these before the query reaches Prometheus. The range stands in for
# $__rate_interval with a value nothing else uses, so a test can tell it was there.
RATE_INTERVAL_STAND_IN = "7m13s"
RATE_INTERVAL_SECONDS = 7 * 60 + 13


def grafana_to_promql(expr: str, rate_interval: str = RATE_INTERVAL_STAND_IN) -> str:
    """Substitute Grafana's macros and template variables as Grafana would (all values)."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__interval", "1m")
    expr = re.sub(r"\$\{?(cluster|namespace|pod)\}?", ".*", expr)  # their allValue: labels may be absent
    return re.sub(r"\$\{?(job|instance)\}?", ".+", expr)


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects, read from its syntax tree."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def matrix_ranges(expr: str) -> list[float]:
    """The range, in seconds, of every `[range]` selector in the expression."""
    ranges: list[float] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.MatrixSelector):
            ranges.append(node.range.total_seconds())

    promql_parser.walk(promql_parser.parse(expr), visit)
    return ranges

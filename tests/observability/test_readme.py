"""The README's Observability section stays true: every metric listed, every recipe valid."""

from __future__ import annotations

import re

from .conftest import ROOT
from .promql import metric_names
from .sample import all_metrics


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Observability")
    return text[start : text.index("\n## ", start + 1)]


def _recipes() -> list[str]:
    """Expressions of the ```promql block: a line starting at column 0 begins one, indented
    lines continue it, comments separate them."""
    block = re.search(r"```promql\n(.*?)```", _section(), re.S)
    assert block, "no promql block in the Observability section"
    exprs: list[str] = []
    for line in block.group(1).splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line[0].isspace() and exprs:
            exprs[-1] += "\n" + line
        else:
            exprs.append(line)
    return exprs


def test_metrics_table_lists_every_exported_family() -> None:
    section = _section()
    for py_name, metric in all_metrics().items():
        for family in metric.describe():
            suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
            assert f"| `{family.name}{suffix}` |" in section, f"{py_name} missing from the README table"


def test_promql_recipes_parse_and_use_exported_series(exported_names: set[str]) -> None:
    recipes = _recipes()
    assert len(recipes) >= 8
    for expr in recipes:
        unknown = metric_names(expr) - exported_names
        assert not unknown, f"README recipe uses {sorted(unknown)}:\n{expr}"

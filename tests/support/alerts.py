"""Alert rules checked against series scraped from a running service (promtool test rules)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

RULES = Path(__file__).resolve().parents[2] / "dashboards" / "alerts.yaml"


def alert_annotations(alertname: str, substitutions: Mapping[str, str]) -> dict[str, str]:
    """The alert's annotations from dashboards/alerts.yaml with its templates (`{{ $labels.x }}`,
    `{{ $value | humanize }}`) replaced by what the test expects them to print."""
    rules = yaml.safe_load(RULES.read_text())
    alert = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == alertname)
    out = {}
    for key, template_text in alert["annotations"].items():
        text = template_text
        for template, value in substitutions.items():
            text = text.replace(template, value)
        out[key] = text
    return out


def assert_fires(
    promtool: Path,
    tmp_path: Path,
    series: Sequence[Mapping[str, str]],
    alertname: str,
    *,
    quiet_at: str,
    fires_at: str,
    labels: Mapping[str, str],
    expected_annotations: Mapping[str, str],
) -> None:
    """`alertname` does not fire at `quiet_at` and fires at `fires_at` (with exactly these
    labels and annotations) over `series` (promtool's input_series, one sample a minute)."""
    test: dict[str, Any] = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": list(series),
                "alert_rule_test": [
                    {"eval_time": quiet_at, "alertname": alertname, "exp_alerts": []},
                    {
                        "eval_time": fires_at,
                        "alertname": alertname,
                        "exp_alerts": [
                            {"exp_labels": dict(labels), "exp_annotations": dict(expected_annotations)}
                        ],
                    },
                ],
            }
        ],
    }
    path = tmp_path / f"{alertname}_test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    run = subprocess.run(
        [str(promtool), "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr

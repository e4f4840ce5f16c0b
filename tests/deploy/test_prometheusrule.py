"""The chart's PrometheusRule is per release: two installs never fire each other's alerts
(checked with promtool's rule unit tests on the rendered rules), alerts can be switched off and
their thresholds changed, and every runbook_url points at a section that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_python import HelmRenderError

from dev import promtool as tools

from .helpers import ROOT, merge, render, scenario

RUNBOOK = ROOT / "docs" / "runbook.md"


def _rules(values: dict[str, Any], release: str = "ci", namespace: str = "ns-a") -> list[dict[str, Any]]:
    groups = render(values, release=release, namespace=namespace).one("PrometheusRule")["spec"]["groups"]
    return [r for g in groups for r in g["rules"] if "alert" in r]


def _defaults() -> dict[str, Any]:
    return merge(scenario("monitoring"), {"metrics": {"prometheusRule": {"rules": []}}})


def test_every_selector_is_scoped_to_the_release() -> None:
    for release, namespace in (("ci", "ns-a"), ("other", "ns-b")):
        job = f"{release}-clevertap-consumer-metrics"
        for rule in _rules(_defaults(), release, namespace):
            selectors = re.findall(r"\b(?:up|clevertap_consumer_\w+)\{([^}]*)\}", rule["expr"])
            assert selectors, rule["alert"]
            for labels in selectors:
                assert f'namespace="{namespace}", job="{job}"' in labels, (rule["alert"], labels)
            assert "clevertap-consumer.*" not in rule["expr"]


@pytest.fixture(scope="module")
def promtool() -> Path:
    return tools.ensure("promtool")


def _expected(alert: str, severity: str, **labels: str) -> dict[str, Any]:
    """The alert as promtool reports it: annotations with the label templates filled in."""
    (rule,) = [r for r in _rules(_defaults(), "b", "ns-b") if r["alert"] == alert]
    annotations = {}
    for key, template in rule["annotations"].items():
        text = template
        for name, value in labels.items():
            text = text.replace("{{ $labels." + name + " }}", value)
        annotations[key] = text
    return {"exp_labels": {"severity": severity, **labels}, "exp_annotations": annotations}


def test_two_releases_never_fire_each_others_alerts(promtool: Path, tmp_path: Path) -> None:
    """Release b's pod is down and its target vanishes; only b's rules fire, a's stay quiet."""
    files = {}
    b = {"namespace": "ns-b", "job": "b-clevertap-consumer-metrics"}
    for release, namespace in (("a", "ns-a"), ("b", "ns-b")):
        path = tmp_path / f"{release}.yaml"
        path.write_text(
            yaml.safe_dump({"groups": [{"name": release, "rules": _rules(_defaults(), release, namespace)}]})
        )
        files[release] = path.name
    a_up = 'up{namespace="ns-a", job="a-clevertap-consumer-metrics", instance="pod-a"}'
    b_up = 'up{namespace="ns-b", job="b-clevertap-consumer-metrics", instance="pod-b"}'
    ready_b = (
        'clevertap_consumer_ready{namespace="ns-b", job="b-clevertap-consumer-metrics", instance="pod-b"}'
    )
    test = {
        "rule_files": list(files.values()),
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": a_up, "values": "1x40"},
                    {"series": b_up, "values": "0x40"},
                    {"series": ready_b, "values": "0x40"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "12m",
                        "alertname": "ClevertapConsumerDown",
                        "exp_alerts": [_expected("ClevertapConsumerDown", "critical", **b, instance="pod-b")],
                    },
                    {
                        "eval_time": "12m",
                        "alertname": "ClevertapConsumerNotReady",
                        "exp_alerts": [
                            _expected("ClevertapConsumerNotReady", "warning", **b, instance="pod-b")
                        ],
                    },
                    {"eval_time": "30m", "alertname": "ClevertapConsumerAbsent", "exp_alerts": []},
                ],
            },
            {
                "interval": "1m",
                "input_series": [{"series": a_up, "values": "1x40"}],
                "alert_rule_test": [
                    {
                        "eval_time": "30m",
                        "alertname": "ClevertapConsumerAbsent",
                        "exp_alerts": [_expected("ClevertapConsumerAbsent", "critical", **b)],
                    },
                ],
            },
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
    for name in files.values():
        check = subprocess.run(
            [str(promtool), "check", "rules", name], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr
    done = subprocess.run(
        [str(promtool), "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_alerts_can_be_switched_off_and_tuned() -> None:
    values = merge(
        _defaults(),
        {
            "metrics": {
                "prometheusRule": {
                    "alerts": {
                        "ClevertapConsumerHighRetryRate": {"enabled": False},
                        "ClevertapConsumerLagGrowing": {
                            "threshold": 5000,
                            "for": "30m",
                            "severity": "critical",
                        },
                    }
                }
            }
        },
    )
    rules = {r["alert"]: r for r in _rules(values)}
    assert "ClevertapConsumerHighRetryRate" not in rules
    lag = rules["ClevertapConsumerLagGrowing"]
    assert "> 5000" in lag["expr"]
    assert "> 1000" not in lag["expr"]
    assert (lag["for"], lag["labels"]["severity"]) == ("30m", "critical")
    assert "ClevertapConsumerAbsent" in rules


@pytest.mark.parametrize(
    ("alerts", "named"),
    [
        ({"ClevertapConsumerTypo": {"enabled": False}}, "ClevertapConsumerTypo"),
        ({"ClevertapConsumerDown": {"threshold": 3}}, "ClevertapConsumerDown.threshold"),
    ],
)
def test_bad_alert_overrides_fail_the_render(alerts: dict[str, Any], named: str) -> None:
    with pytest.raises(HelmRenderError) as err:
        render(merge(_defaults(), {"metrics": {"prometheusRule": {"alerts": alerts}}}))
    assert named in str(err.value)


def test_every_runbook_url_points_at_a_section_that_exists() -> None:
    anchors = {
        "#" + line.removeprefix("## ").strip().lower()
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    plain = [
        r
        for g in yaml.safe_load((ROOT / "dashboards" / "alerts.yaml").read_text())["groups"]
        for r in g["rules"]
    ]
    rules = _rules(_defaults())
    assert len(rules) == len(plain)
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        base, _, anchor = url.partition("#")
        assert base.endswith("/docs/runbook.md"), url
        assert "#" + anchor in anchors, url

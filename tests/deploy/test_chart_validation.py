"""The chart lints and renders valid Kubernetes objects for every ci/ scenario, without a cluster.

- `helm lint --strict` through Helm's Go SDK (helm-python-sdk), at the oldest supported version.
- Built-in kinds: kubernetes-validate's OpenAPI schemas in strict mode (unknown fields fail), for
  the oldest supported Kubernetes and the newest one it knows, so removed APIs are caught too.
- Custom resources (ServiceMonitor, PrometheusRule, ScaledObject, TriggerAuthentication): the
  CRD schemas compiled into @kubernetes-models/* (types, enums, patterns, required fields).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from .helpers import CHART, CI_VALUES, KUBE_VERSIONS, ROOT, Manifest, render, scenario

SCENARIOS = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]
CUSTOM_KINDS = {
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
    "keda.sh/v1alpha1/ScaledObject",
    "keda.sh/v1alpha1/TriggerAuthentication",
}


def _kind_key(m: Manifest) -> str:
    return f"{m['apiVersion']}/{m['kind']}"


def _validate_crds(node_modules: Path, manifests: list[Manifest]) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["node", str(ROOT / "dev" / "deploy-tools" / "validate-crds.mjs"), str(node_modules)],
        input=json.dumps(manifests),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert isinstance(out, list)
    return out


def test_every_scenario_is_covered() -> None:
    assert set(SCENARIOS) >= {
        "default",
        "keda",
        "sasl",
        "monitoring",
        "existing-secret",
        "static-membership",
        "hpa",
    }


@pytest.mark.parametrize("name", SCENARIOS)
def test_lint_strict(name: str) -> None:
    report = helm_python.lint(CHART, scenario(name), strict=True, kube_version=f"v{KUBE_VERSIONS[0]}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_lint_strict_with_the_chart_defaults() -> None:
    """What `helm lint` / chart-testing run without values (the required values only `fail` at install)."""
    report = helm_python.lint(CHART, {}, strict=True, kube_version=f"v{KUBE_VERSIONS[0]}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_lint_reports_a_broken_chart(tmp_path: Path) -> None:
    """The lint above would catch a template error: a copy with one is reported."""
    broken = tmp_path / "clevertap-consumer"
    shutil.copytree(CHART, broken)
    pdb = broken / "templates" / "pdb.yaml"
    pdb.write_text(pdb.read_text().replace("{{- end }}\napiVersion", "{{- end\napiVersion", 1))
    report = helm_python.lint(broken, scenario("default"), strict=True)
    assert report["errors"] or [m for m in report["messages"] if m["severity"] >= 2]


@pytest.mark.parametrize("name", SCENARIOS)
def test_builtin_objects_are_valid_kubernetes(name: str) -> None:
    rendered = render(scenario(name))
    checked = 0
    for manifest in rendered:
        if _kind_key(manifest) in CUSTOM_KINDS:
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{manifest['kind']}/{manifest['metadata']['name']} invalid for {version}: {exc}")
        checked += 1
    assert checked >= 5  # workload, ConfigMap, metrics Service, ServiceAccount, PDB, …


def test_kubernetes_validate_is_strict() -> None:
    """Unknown (misspelled) fields fail, so the check above is not vacuous."""
    deployment = render(scenario("default")).workload()
    bad = copy.deepcopy(deployment)
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSIONS[0], strict=True)
    bad = copy.deepcopy(deployment)
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSIONS[0], strict=True)


def test_custom_resources_match_their_crd_schemas(node_modules: Path) -> None:
    manifests = [m for name in SCENARIOS for m in render(scenario(name)) if _kind_key(m) in CUSTOM_KINDS]
    assert {_kind_key(m) for m in manifests} == CUSTOM_KINDS, "some CRD kind is rendered by no scenario"
    results = _validate_crds(node_modules, manifests)
    assert len(results) == len(manifests)
    assert [r for r in results if r["errors"]] == []


def test_crd_validation_rejects_bad_objects(node_modules: Path) -> None:
    rendered = render(scenario("sasl"))
    scaled = copy.deepcopy(rendered.one("ScaledObject"))
    scaled["spec"]["minReplicaCount"] = "1"
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 5000
    monitor = copy.deepcopy(render(scenario("monitoring")).one("ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["interval"] = "15 seconds"
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    results = _validate_crds(node_modules, [scaled, monitor, unknown])
    assert all(r["errors"] for r in results), results
    assert "minReplicaCount" in results[0]["errors"][0]
    assert "lagThreshold" in results[0]["errors"][0]


YAMLLINT = YamlLintConfig(
    """
extends: default
rules:
  line-length: {max: 160}
  document-start: disable
  truthy: {check-keys: false}
  comments: {min-spaces-from-content: 1}
  braces: {max-spaces-inside: 1}
  brackets: {max-spaces-inside: 1}
"""
)


@pytest.mark.parametrize(
    "path",
    [
        CHART / "Chart.yaml",
        CHART / "values.yaml",
        CHART / "rules" / "alerts.yaml",
        *CI_VALUES,
        ROOT / "docker-compose.yml",
        *sorted((ROOT / "deploy" / "compose").rglob("*.y*ml")),
    ],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_yaml_files_are_clean(path: Path) -> None:
    """yamllint: duplicate keys (silently last-wins in most parsers), indentation, syntax.

    Alert rules are exempt from the line length only: a PromQL expression or an annotation reads
    best on one line, and promtool checks those files more strictly than yamllint can.
    """
    problems = [
        p
        for p in linter.run(path.read_text(), YAMLLINT, str(path))
        if not (path.name == "alerts.yaml" and p.rule == "line-length")
    ]
    assert [f"{p.line}:{p.column} {p.message}" for p in problems] == []


def test_chart_metadata() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2"
    assert meta["type"] == "application"
    assert meta["name"] == "clevertap-consumer"
    assert isinstance(meta["appVersion"], str)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["appVersion"] == pyproject["project"]["version"], (
        "appVersion should track the package version"
    )
    assert meta["kubeVersion"] == f">={KUBE_VERSIONS[0]}-0"

"""Bad values are refused with a message naming them; values.yaml, its schema and README agree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_python import HelmRenderError, HelmValuesError

from .helpers import CHART, chart, merge, render, scenario

SCHEMA = json.loads((CHART / "values.schema.json").read_text())


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"iamge": {"tag": "1"}}, "iamge"),
        ({"image": {"tga": "1"}}, "tga"),
        ({"kafka": {"sasl": {"pasword": "x"}}}, "pasword"),
        ({"replicaCount": "two"}, "replicaCount"),
        ({"kind": "DaemonSet"}, "kind"),
        ({"kafka": {"securityProtocol": "SASL"}}, "securityProtocol"),
        ({"kafka": {"sasl": {"mechanism": "SCRAM"}}}, "mechanism"),
        ({"kafka": {"topics": "events"}}, "topics"),
        ({"kafka": {"extraConfig": {"fetch.max.bytes": 1048576}}}, "fetch.max.bytes"),
        ({"clevertap": {"maxInFlight": 16}}, "maxInFlight"),
        ({"workers": 0}, "workers"),
        ({"destinationsUpdate": "hot"}, "destinationsUpdate"),
        ({"batch": {"maxRecords": 1001}}, "maxRecords"),
        ({"flowControl": {"drainTimeoutSeconds": 0}}, "drainTimeoutSeconds"),
        ({"destinations": {"web": {"passcod": "x"}}}, "passcod"),
        ({"destinations": {"web": {"profile": "segment"}}}, "profile"),
        ({"destinations": {"web": {"eventFilteringOption": "allow"}}}, "eventFilteringOption"),
        ({"destinations": {"bad/id": {"accountId": "A", "passcode": "p"}}}, "bad/id"),
        ({"destinations": {"web": {"passcodeEnv": "1ABC"}}}, "passcodeEnv"),
        ({"destinations": {"app": {"passcode": "p"}}}, "accountId"),
        ({"autoscaling": {"keda": {"offsetResetPolicy": "oldest"}}}, "offsetResetPolicy"),
        ({"autoscaling": {"keda": {"lagThreshold": "5000"}}}, "lagThreshold"),
        ({"metrics": {"port": 70000}}, "port"),
        ({"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, "interval"),
        ({"pdb": {"maxUnavailable": "half"}}, "maxUnavailable"),
        ({"logging": {"level": "TRACE"}}, "level"),
        ({"schemaRegistry": {"url": "schema-registry:8081"}}, "url"),
        ({"image": {"digest": "sha256:abc"}}, "digest"),
        ({"tmpDirSizeLimit": "lots"}, "tmpDirSizeLimit"),
    ],
)
def test_schema_rejects_bad_values(override: dict[str, Any], named: str) -> None:
    values = merge(scenario("default"), override)
    with pytest.raises(HelmValuesError) as err:
        chart().validate_schema(values)
    assert named in str(err.value)
    with pytest.raises(HelmValuesError):  # and install/template refuse them too
        render(values)


@pytest.mark.parametrize(
    "name", [p.name.removesuffix("-values.yaml") for p in sorted((CHART / "ci").glob("*-values.yaml"))]
)
def test_schema_accepts_the_scenarios(name: str) -> None:
    chart().validate_schema(scenario(name))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v["kafka"].pop("bootstrapServers"), "kafka.bootstrapServers is required"),
        (lambda v: v["kafka"].update(topics=[]), "kafka.topics"),
        (lambda v: v.pop("destinations"), "destinations"),
        (lambda v: v["destinations"]["web"].pop("passcode"), "destinations.web: no passcode"),
        (
            lambda v: v.update(clevertap={"existingSecret": "s"}),
            "destinations.web.passcode is set but clevertap.existingSecret",
        ),
        (
            lambda v: v["destinations"]["web"].update(passcodeKey="k"),
            "passcodeKey needs clevertap.existingSecret",
        ),
        (lambda v: v["destinations"]["web"].update(passcodeEnv="WEB_PASSCODE"), "not both"),
        (lambda v: v["kafka"].update(securityProtocol="SASL_SSL"), "set kafka.sasl.mechanism"),
        (lambda v: v["kafka"].update(sasl={"mechanism": "PLAIN"}), "use SASL_PLAINTEXT or SASL_SSL"),
        (lambda v: v["kafka"].update(tls={"existingSecret": "ca"}), "use SSL or SASL_SSL"),
        (
            lambda v: (
                v.update(autoscaling={"keda": {"enabled": True, "limitToPartitionsWithLag": True}})
                or v["kafka"].update(topics=["a", "b"])
            ),
            "exactly one topic",
        ),
        (
            lambda v: v.update(autoscaling={"hpa": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}),
            "minReplicas",
        ),
        (
            lambda v: v.update(autoscaling={"hpa": {"enabled": True, "targetCPU": ""}}),
            "targetCPU or targetMemory",
        ),
    ],
)
def test_template_refuses_inconsistent_values(change: Any, message: str) -> None:
    values = scenario("default")
    change(values)
    with pytest.raises(HelmRenderError) as err:
        render(values)
    assert message in str(err.value)


def _leaves(tree: Any, prefix: str = "") -> set[str]:
    if isinstance(tree, dict) and tree:
        out: set[str] = set()
        for k, v in tree.items():
            out |= _leaves(v, f"{prefix}.{k}" if prefix else k)
        return out
    return {prefix}


def _schema_paths(node: dict[str, Any], prefix: str = "") -> set[str]:
    """Paths the schema declares with closed objects (free-form objects are one path)."""
    props = node.get("properties")
    if not props or node.get("additionalProperties", True) is not False:
        return {prefix}
    out: set[str] = set()
    for k, v in props.items():
        out |= _schema_paths(v, f"{prefix}.{k}" if prefix else k)
    return out


def test_schema_and_values_yaml_declare_the_same_keys() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    declared = _schema_paths(SCHEMA) - {"global"}
    in_values = _leaves(values)
    # a free-form object in the schema covers every key below it in values.yaml
    covered = {v for v in in_values if any(v == d or v.startswith(d + ".") for d in declared)}
    assert in_values == covered, f"keys in values.yaml the schema does not declare: {in_values - covered}"
    missing = {d for d in declared if not any(v == d or v.startswith(d + ".") for v in in_values)}
    assert missing == set(), f"schema keys without a default in values.yaml: {missing}"


def test_schema_is_draft07_and_closed() -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert SCHEMA["additionalProperties"] is False
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--check-metaschema",
            str(CHART / "values.schema.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_parameters_table_is_generated_from_values(node_modules: Path, tmp_path: Path) -> None:
    """README.md's Parameters section equals what readme-generator-for-helm makes of values.yaml
    (which also fails on a key without `@param`, or an `@param` without a key)."""
    readme = tmp_path / "README.md"
    shutil.copyfile(CHART / "README.md", readme)
    result = subprocess.run(
        [
            "node",
            str(node_modules / "@bitnami" / "readme-generator-for-helm" / "bin" / "index.js"),
            "--values",
            str(CHART / "values.yaml"),
            "--readme",
            str(readme),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert readme.read_text() == (CHART / "README.md").read_text(), (
        "helm/clevertap-consumer/README.md is out of date: run "
        "`node .cache/tools/node/node_modules/@bitnami/readme-generator-for-helm/bin/index.js "
        "-v helm/clevertap-consumer/values.yaml -r helm/clevertap-consumer/README.md`"
    )

"""Rendering the chart offline (Helm's Go SDK through helm-python-sdk) and picking manifests."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from helm_python import Chart

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "clevertap-consumer"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "ci"
NAMESPACE = "analytics"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schema
# kubernetes-validate bundles: manifests must be valid for both.
KUBE_VERSIONS = ("1.29.0", "1.37.0")

Manifest = dict[str, Any]


@functools.cache
def chart() -> Chart:
    return Chart.load(CHART)


def scenario(name: str) -> dict[str, Any]:
    """Values of ci/<name>-values.yaml (a fresh copy, safe to modify)."""
    data = yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text())
    assert isinstance(data, dict)
    return data


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge two values trees the way Helm merges -f files (maps merge, the rest replaces)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class Rendered:
    """The manifests of one offline render, by template and by kind."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self.files = dict(files)
        self.notes = next((text for path, text in files.items() if path.endswith("NOTES.txt")), "")
        self.by_template: dict[str, list[Manifest]] = {}
        for path, text in files.items():
            if path.endswith(".txt"):
                continue
            docs = [d for d in yaml.safe_load_all(text) if d]
            self.by_template[path.removeprefix(f"{CHART.name}/")] = docs

    def __iter__(self) -> Iterator[Manifest]:
        for docs in self.by_template.values():
            yield from docs

    def kinds(self) -> list[str]:
        return sorted(m["kind"] for m in self)

    def all(self, kind: str) -> list[Manifest]:
        return [m for m in self if m["kind"] == kind]

    def one(self, kind: str) -> Manifest:
        found = self.all(kind)
        assert len(found) == 1, f"expected one {kind}, found {len(found)}: {self.kinds()}"
        return found[0]

    def workload(self) -> Manifest:
        found = [m for m in self if m["kind"] in ("Deployment", "StatefulSet")]
        assert len(found) == 1, self.kinds()
        return found[0]

    def container(self) -> dict[str, Any]:
        containers = self.workload()["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1
        c = containers[0]
        assert isinstance(c, dict)
        return c

    def env(self) -> dict[str, dict[str, Any]]:
        """The container's env entries by name (each entry: value or valueFrom)."""
        entries = self.container()["env"]
        names = [e["name"] for e in entries]
        assert len(names) == len(set(names)), f"duplicate env names: {names}"
        return {e["name"]: e for e in entries}


def render(values: Mapping[str, Any], *, release: str = RELEASE, namespace: str = NAMESPACE) -> Rendered:
    return Rendered(chart().render(dict(values), name=release, namespace=namespace))

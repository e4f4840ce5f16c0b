"""The release workflow passes actionlint and publishes what the chart deploys by default."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dev import actionlint

from .helpers import CHART, ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


@pytest.fixture(scope="module")
def linter() -> Path:
    return actionlint.ensure()


def _lint(linter: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(linter), "-no-color", *map(str, files)], cwd=ROOT, capture_output=True, text=True, check=False
    )


def _workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def test_every_workflow_passes_actionlint(linter: Path) -> None:
    files = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert WORKFLOW in files
    done = _lint(linter, *files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_really_checks(linter: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("needs: test", "needs: tests"))
    done = _lint(linter, broken)
    assert done.returncode == 1
    assert "tests" in done.stdout


def test_release_tests_then_pushes_a_multi_arch_image_and_the_chart() -> None:
    jobs = _workflow()["jobs"]
    assert any("bash .ci/run" in step.get("run", "") for step in jobs["test"]["steps"])
    assert jobs["image"]["needs"] == "test"
    (build,) = [s for s in jobs["image"]["steps"] if s.get("uses", "").startswith("docker/build-push-action")]
    assert build["with"]["push"] is True
    assert set(build["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    (meta,) = [s for s in jobs["image"]["steps"] if s.get("id") == "meta"]
    assert meta["with"]["images"] == "ghcr.io/${{ github.repository_owner }}/clevertap-consumer"
    assert jobs["chart"]["needs"] == "image"
    script = "\n".join(s.get("run", "") for s in jobs["chart"]["steps"])
    assert "helm package helm/clevertap-consumer" in script
    assert 'helm push dist/clevertap-consumer-*.tgz "oci://ghcr.io/' in script


def test_chart_default_image_is_the_published_one() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert values["image"]["registry"] == "ghcr.io"
    assert values["image"]["repository"].endswith("/clevertap-consumer")
    assert values["image"]["tag"] == ""  # the chart's appVersion: the semver tag the workflow pushes
    assert chart["appVersion"] == "0.1.0"


def test_dependabot_updates_python_actions_and_the_base_image() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {u["package-ecosystem"] for u in config["updates"]}
    assert {"pip", "github-actions", "docker"} <= ecosystems

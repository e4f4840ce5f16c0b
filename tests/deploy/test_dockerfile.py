"""The image's invariants, checked on the Dockerfile parsed by BuildKit's own parser (no engine here).

What matters at run time: a non-root numeric user (so `runAsNonRoot` can verify it), an exec-form
entry point (SIGTERM reaches Python, which drains and commits), nothing that needs a writable
root filesystem, and no HEALTHCHECK (Kubernetes probes the health endpoints).
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field

import dockerfile
import pytest
import yaml

from consumer.settings import Settings

from .helpers import CHART, ROOT

DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str
    commands: list[dockerfile.Command] = field(default_factory=list)

    def all(self, cmd: str) -> list[dockerfile.Command]:
        return [c for c in self.commands if c.cmd == cmd]


def _parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, in order."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for command in dockerfile.parse_string(text):
        if command.cmd == "FROM":
            value = command.value
            name = value[2] if len(value) == 3 and value[1].upper() == "AS" else ""
            stages.append(Stage(base=value[0], name=name))
        elif stages:
            stages[-1].commands.append(command)
        elif command.cmd == "ARG":
            key, _, default = command.value[0].partition("=")
            args[key] = default
    return args, stages


ARGS, STAGES = _parse(DOCKERFILE.read_text())
FINAL = STAGES[-1]


def _resolve(base: str) -> str:
    for key, default in ARGS.items():
        base = base.replace("${" + key + "}", default).replace("$" + key, default)
    return base


def test_multi_stage_from_a_pinned_slim_python() -> None:
    assert len(STAGES) >= 2
    bases = {_resolve(s.base) for s in STAGES}
    assert bases == {"python:3.11-slim-bookworm"}
    for base in bases:
        _, _, tag = base.partition(":")
        assert tag, base
        assert tag != "latest", base


def test_wheels_are_built_in_the_first_stage_and_installed_offline() -> None:
    build = STAGES[0]
    assert any("pip wheel" in " ".join(c.value) for c in build.all("RUN"))
    installs = [c for c in FINAL.all("RUN") if "pip install" in " ".join(c.value)]
    assert len(installs) == 1
    install = installs[0]
    assert "--no-index" in install.value[0]
    assert any(f.startswith("--mount=type=bind") and f"from={build.name}" in f for f in install.flags)
    assert FINAL.all("COPY") == []  # nothing from the build context reaches the runtime image


def test_runs_as_a_numeric_non_root_user() -> None:
    users = FINAL.all("USER")
    assert len(users) == 1
    uid, _, gid = users[0].value[0].partition(":")
    assert uid.isdigit()
    assert gid.isdigit()
    assert int(uid) != 0
    assert int(gid) != 0
    # nothing runs as root after the switch
    after = FINAL.commands[FINAL.commands.index(users[0]) :]
    assert [c.cmd for c in after if c.cmd in ("RUN", "COPY", "ADD")] == []
    # and the chart's default pod security context uses the same ids
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)


def test_exec_form_entry_point_runs_the_service() -> None:
    (entrypoint,) = FINAL.all("ENTRYPOINT")
    (cmd,) = FINAL.all("CMD")
    assert entrypoint.json, "shell-form ENTRYPOINT would put /bin/sh between SIGTERM and Python"
    assert cmd.json
    assert list(entrypoint.value) == ["clevertap-consumer"]
    assert list(cmd.value) == ["run"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "clevertap-consumer" in pyproject["project"]["scripts"]


def test_no_healthcheck_and_stop_signal_is_sigterm() -> None:
    assert [c for s in STAGES for c in s.all("HEALTHCHECK")] == []
    assert [c.value[0] for c in FINAL.all("STOPSIGNAL")] == ["SIGTERM"]


def test_environment_for_a_read_only_root_filesystem() -> None:
    env: dict[str, str] = {}
    for c in FINAL.all("ENV"):
        pairs = list(c.value)
        env.update(zip(pairs[::2], pairs[1::2], strict=True))
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # no .pyc writes into site-packages
    assert env["HOME"] == "/tmp"  # the only writable path (emptyDir / tmpfs)


def test_exposes_the_metrics_port() -> None:
    exposed = [p for c in FINAL.all("EXPOSE") for p in c.value]
    assert exposed == [str(Settings.model_fields["metrics_port"].default)]


def test_oci_labels() -> None:
    labels: dict[str, str] = {}
    for c in FINAL.all("LABEL"):
        pairs = list(c.value)
        labels.update(zip(pairs[::2], pairs[1::2], strict=True))
    for key in ("title", "description", "version", "revision", "created", "source", "licenses"):
        assert f"org.opencontainers.image.{key}" in labels, key
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert labels["org.opencontainers.image.licenses"].strip('"') == pyproject["project"]["license"]
    version_arg = next(c.value[0] for c in FINAL.all("ARG") if c.value[0].startswith("VERSION="))
    assert version_arg == f"VERSION={pyproject['project']['version']}"


def _ignored(patterns: list[str], path: str) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat + "/*") or path.startswith(pat + "/"):
            ignored = not negate
    return ignored


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("pyproject.toml", False),
        ("README.md", False),
        ("consumer/settings.py", False),
        ("consumer/__pycache__/settings.cpython-311.pyc", True),
        (".venv/bin/python", True),
        (".cache/tools/node/package.json", True),
        (".git/HEAD", True),
        ("tests/test_settings.py", True),
        ("deploy/compose/secrets/clevertap-passcode-web", True),
        ("helm/clevertap-consumer/values.yaml", True),
        (".env", True),
    ],
)
def test_dockerignore_sends_only_what_the_wheel_needs(path: str, ignored: bool) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert _ignored(patterns, path) is ignored


def test_dockerignore_keeps_the_files_pyproject_needs() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert not _ignored(patterns, pyproject["project"]["readme"])
    for package in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert not _ignored(patterns, package.rstrip("*") + "/__init__.py")

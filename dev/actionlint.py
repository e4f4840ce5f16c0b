"""actionlint, built from its Go module through the Go module proxy and cached in .cache/tools/go.

The release workflow (.github/workflows/release.yml) only runs on GitHub, so the test suite
checks it with actionlint instead (syntax, expressions, action inputs, and shellcheck-free
`run:` scripts). CI starts from a clean clone: `go install` of a pinned version builds it once
(about 30 s), later runs reuse the binary. An `actionlint` already on PATH wins.

    python dev/actionlint.py                 # lints .github/workflows/*.yml
    python dev/actionlint.py --path          # prints where actionlint is
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "tools" / "go"
VERSION = "v1.7.12"
BIN = CACHE / "bin" / f"actionlint-{VERSION}"


class ToolError(RuntimeError):
    """actionlint could not be found or built; the message says what to do instead."""


def ensure() -> Path:
    """Path of actionlint: on PATH, cached, or built now with `go install` (idempotent)."""
    found = shutil.which("actionlint")
    if found:
        return Path(found)
    if BIN.is_file():
        return BIN
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.isfile("/usr/local/go/bin/go") else None)
    if go is None:
        raise ToolError("actionlint is not on PATH and there is no Go toolchain to build it")
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(CACHE / ".lock"):
        if not BIN.is_file():
            gobin = CACHE / "build-bin"
            env = {
                **os.environ,
                "GOBIN": str(gobin),
                "GOPATH": str(CACHE / "path"),
                "GOCACHE": str(CACHE / "build"),
                "GOFLAGS": "-modcacherw",
            }
            done = subprocess.run(
                [go, "install", f"github.com/rhysd/actionlint/cmd/actionlint@{VERSION}"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise ToolError(f"go install actionlint@{VERSION} failed:\n{done.stdout}{done.stderr}")
            BIN.parent.mkdir(parents=True, exist_ok=True)
            (gobin / "actionlint").rename(BIN)
    return BIN


def main(argv: list[str]) -> int:
    try:
        actionlint = ensure()
    except ToolError as exc:
        print(f"actionlint: {exc}", file=sys.stderr)
        return 2
    if argv == ["--path"]:
        print(actionlint)
        return 0
    return subprocess.run([str(actionlint), *argv], cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The fake CleverTap in its own process, for any test that needs a CleverTap on 127.0.0.1.

`run_fake_clevertap(...)` starts `python -m consumer.fake_clevertap --port 0 ...`, reads the
`listening on` line for the address, and stops the process (SIGTERM, then SIGKILL) on exit. The
returned `FakeCleverTapProcess` wraps the `/_fake/` control API. tests/conftest.py builds the
`fake_clevertap` fixtures on it.
"""

from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

DEFAULT_ACCOUNTS: Mapping[str, str] = {"ACC-ONE": "pass-one", "ACC-TWO": "pass-two"}
_STARTUP_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0


class FakeCleverTapProcess:
    """A running fake: its URLs and its control API."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.upload_url = f"{url}/1/upload"
        self._control = httpx.Client(base_url=url, timeout=10.0, trust_env=False)

    def records(self, account: str | None = None) -> list[dict[str, Any]]:
        """Accepted records (the record objects), in arrival order."""
        return [r["record"] for r in self._records(account)["records"]]

    def timed_records(self, account: str | None = None) -> list[tuple[float, dict[str, Any]]]:
        """Accepted records in arrival order, each with when its request was accepted (epoch s)."""
        body = self._records(account)
        at = {r["id"]: r["at"] for r in body["requests"]}
        return [(at[r["request"]], r["record"]) for r in body["records"]]

    def requests(self, account: str | None = None) -> list[dict[str, Any]]:
        """Accepted requests: id, account and headers (the passcode header is never kept)."""
        requests: list[dict[str, Any]] = self._records(account)["requests"]
        return requests

    def deletions(self, account: str | None = None) -> list[dict[str, Any]]:
        """Accepted Delete Profile requests: `{"account", "identity" | "guid": [...]}`, in order."""
        reply = self._control.get("/_fake/deletions", params={"account": account} if account else None)
        reply.raise_for_status()
        deletions: list[dict[str, Any]] = reply.json()["deletions"]
        return deletions

    def stats(self) -> dict[str, Any]:
        reply = self._control.get("/_fake/stats")
        reply.raise_for_status()
        stats: dict[str, Any] = reply.json()
        return stats

    def set_faults(self, **faults: Any) -> None:
        """E.g. `set_faults(status_5xx_rate=0.5, seed=7)` or `set_faults(account="A", down=True)`."""
        self._control.post("/_fake/faults", json=faults).raise_for_status()

    def reset(self) -> None:
        self._control.post("/_fake/reset").raise_for_status()

    def stop(self) -> int:
        """SIGTERM, wait, SIGKILL if need be; returns the exit code."""
        self._control.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def attributions(self, account: str | None = None) -> list[dict[str, Any]]:
        """Accepted `/attribution` requests' parameters (token and passcode never kept)."""
        reply = self._control.get("/_fake/attributions", params={"account": account} if account else None)
        reply.raise_for_status()
        found: list[dict[str, Any]] = reply.json()["attributions"]
        return found

    def _records(self, account: str | None) -> dict[str, Any]:
        reply = self._control.get("/_fake/records", params={"account": account} if account else None)
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body


def start_fake_clevertap(
    accounts: Mapping[str, str] = DEFAULT_ACCOUNTS,
    *,
    any_account: bool = False,
    max_concurrent: int = 15,
    faults: Mapping[str, Any] | None = None,
    attribution_tokens: Mapping[str, str] | None = None,
    attribution_partners: tuple[str, ...] = (),
) -> FakeCleverTapProcess:
    """Start a fake; the caller stops it (prefer `run_fake_clevertap`)."""
    command = [sys.executable, "-m", "consumer.fake_clevertap", "--port", "0"]
    command += ["--max-concurrent", str(max_concurrent)]
    for account, token in (attribution_tokens or {}).items():
        command += ["--attribution-token", f"{account}:{token}"]
    for partner in attribution_partners:
        command += ["--attribution-partner", partner]
    for account, passcode in accounts.items():
        command += ["--account", f"{account}:{passcode}"]
    if any_account:
        command.append("--any-account")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], _STARTUP_TIMEOUT_S)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("listening on "):
        process.kill()
        process.wait()
        raise RuntimeError(f"fake CleverTap did not start (exit {process.returncode}, said {line!r})")
    fake = FakeCleverTapProcess(process, line.split()[-1])
    if faults:
        fake.set_faults(**faults)
    return fake


@contextmanager
def run_fake_clevertap(
    accounts: Mapping[str, str] = DEFAULT_ACCOUNTS,
    *,
    any_account: bool = False,
    max_concurrent: int = 15,
    faults: Mapping[str, Any] | None = None,
) -> Iterator[FakeCleverTapProcess]:
    fake = start_fake_clevertap(
        accounts, any_account=any_account, max_concurrent=max_concurrent, faults=faults
    )
    try:
        yield fake
    finally:
        fake.stop()

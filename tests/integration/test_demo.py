"""The README's main-job command, end to end: `python -m dev.demo` against the test broker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.kafka import KafkaBed

ROOT = Path(__file__).resolve().parents[2]


def _numbers(summary: str, row: str) -> tuple[int, ...]:
    """The numbers in one row of the demo's summary table."""
    line = next((x for x in summary.splitlines() if row in x), None)
    assert line is not None, f"no {row!r} row in:\n{summary}"
    return tuple(map(int, re.findall(r"\d+", line.split("│")[2])))


def test_the_demo_delivers_and_commits_every_event_and_says_so(kafka: KafkaBed) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "dev.demo", "--events", "2000"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    produced, consumed = _numbers(out, "events produced / consumed")
    committed, end = _numbers(out, "offsets committed")
    assert produced > 2000  # the sample plus its poison messages
    assert consumed == produced
    assert committed == end == produced
    assert _numbers(out, "│ dead-lettered")[0] > 0
    # The books balance: every consumed record finished one way (delivered, filtered, dead-lettered).
    finished = dict(re.findall(r"(\w+): (\d+)", next(x for x in out.splitlines() if "│ finished" in x)))
    assert sum(map(int, finished.values())) == produced, finished
    # 20 AppsFlyer postbacks on their own topic (dev/demo.py appsflyer_postbacks): 8 paid and 4
    # organic installs arrive as events, 4 purchases as Charged, 4 are filtered by the rules.
    filtered = dict(
        re.findall(r"(\w+): (\d+)", next(x for x in out.splitlines() if "filtered by reason" in x))
    )
    assert (
        filtered["event_not_selected"],
        filtered["restricted_media_source"],
        filtered["missing_clevertap_id"],
    ) == (
        "2",
        "1",
        "1",
    )
    assert "Inorganic Install: 8" in out
    assert "Organic Install: 4" in out
    assert "0 (SIGTERM: drained and committed)" in out

"""replay's progress and summary: what an operator sees while a long replay runs and after."""

from __future__ import annotations

import importlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

# The module, not the click command of the same name that consumer.cli exports.
replay_cli = importlib.import_module("consumer.cli.replay")


@dataclass
class _Running:
    """What `progress()` reads of a running pipeline: its counters and the range's size."""

    stats: Counter[str] = field(default_factory=Counter)
    replay_total: int | None = None


def test_progress_is_logged_while_it_runs_and_the_summary_printed_after(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(replay_cli, "LOG_EVERY_S", 0.05)
    running = _Running(Counter(delivered=4, filtered=1), replay_total=10)
    with caplog.at_level(logging.INFO, logger="consumer.replay"), replay_cli.progress(cast(Any, running)):
        deadline = time.monotonic() + 5
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
        running.stats.update(delivered=3, dead_lettered=2)
    line = caplog.records[0]
    assert line.getMessage() == "replay progress: 4 delivered, 1 filtered, 0 dead-lettered"
    assert (getattr(line, "finished", None), getattr(line, "records", None)) == (5, 10)
    assert capsys.readouterr().out.splitlines()[-1] == (
        "replayed 10 of 10 events: delivered 7, filtered 1, dead-lettered 2"
    )

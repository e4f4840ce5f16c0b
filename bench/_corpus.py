"""The events every benchmark here runs on, chosen the same way by each: a JSON-lines file when
given, else the project's reference corpus (`gen_events.py` in the nearest `shared/bench/`
above the checkout; a worktree sits one level deeper), else our own sample events."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from consumer.sample import DEFAULT_DESTINATIONS, sample_events

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = next(
    (
        p / "shared" / "bench" / "gen_events.py"
        for p in ROOT.parents
        if (p / "shared" / "bench" / "gen_events.py").exists()
    ),
    ROOT.parent / "shared" / "bench" / "gen_events.py",
)


def load_corpus(
    path: Path | None,
    events: int,
    generator: Path = GENERATOR,
    destinations: Sequence[str] = DEFAULT_DESTINATIONS,
) -> tuple[str, list[dict[str, Any]]]:
    """Where the events came from, and the events (`events` of them when generated; the whole
    file when given). Our sample events go to `destinations`."""
    if path is not None:
        raw = path.read_bytes()
        source = str(path)
    elif generator.exists():
        raw = subprocess.run(
            [sys.executable, str(generator), str(events)], check=True, capture_output=True
        ).stdout
        source = f"{generator} {events}"
    else:
        return f"clevertap-consumer sample-events {events}", list(sample_events(events, 1, destinations))
    return source, [orjson.loads(line) for line in raw.splitlines() if line.strip()]


ACCOUNTS = ("BENCH-A", "BENCH-B", "BENCH-C", "BENCH-D")


def bench_destinations(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The destinations of the end-to-end and chain benches: each destination id of `events`,
    spread over four accounts in four regions, half of them with object-id mapping."""
    ids = sorted({str(e.get("destinationId")) for e in events})
    regions = ["EU", "IN", "US", "SG"]
    return [
        {
            "id": d,
            "accountId": ACCOUNTS[i % len(ACCOUNTS)],
            "passcode": f"pass-{ACCOUNTS[i % len(ACCOUNTS)]}",
            "region": regions[i % len(ACCOUNTS)],
            "trackAnonymous": True,
            "enableObjectIdMapping": i % 2 == 1,
        }
        for i, d in enumerate(ids)
    ]

"""Fault campaigns: the service as a subprocess, hurt on purpose, reconciled by unique event id.

Every event carries its own id (`properties.eid`, which the transform copies into `evtData`),
so the books are exact: an id the fake CleverTap accepted is *delivered* (more than once: the
extras are *duplicates*), an id in the DLQ topic is *dead-lettered* (its stage and reason are
kept), and any other id is *lost*. Each campaign prints one summary line.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consumer.codec import Decoder, to_message
from consumer.source import message_headers
from tests.support.fake_clevertap import FakeCleverTapProcess
from tests.support.service import Bed

# Roughly the mix: 20% of requests fail (500/503, 429, connection resets, stalls that
# run into the client's timeout).
MIXED_FAULTS: Mapping[str, float] = {
    "status_5xx_rate": 0.08,
    "status_429_rate": 0.04,
    "reset_rate": 0.04,
    "timeout_rate": 0.04,
}


def accounts(n: int) -> dict[str, str]:
    return {f"ACC-{i}": f"pass-{i}" for i in range(n)}


def destinations(n: int) -> dict[str, Any]:
    """n destinations, each its own CleverTap account of the fake."""
    return {
        "destinations": [
            {"id": f"dest-{i}", "accountId": f"ACC-{i}", "passcode": f"pass-{i}"} for i in range(n)
        ]
    }


def events(n: int, n_destinations: int, start: int = 0) -> list[dict[str, Any]]:
    """n track events with unique ids, spread over the destinations and 1000 users."""
    return [
        {
            "type": "track",
            "event": "Campaign Step",
            "userId": f"user-{i % 1000}",
            "messageId": f"msg-{i}",
            "properties": {"eid": i},
            "timestamp": "2026-12-01T00:00:00Z",
            "destinationId": f"dest-{i % n_destinations}",
        }
        for i in range(start, start + n)
    ]


@dataclass
class Books:
    """Where every event id ended up."""

    expected: int
    delivered: Counter[int] = field(default_factory=Counter)
    dead_lettered: dict[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.delivered.values() if n > 1)

    @property
    def lost(self) -> list[int]:
        return [i for i in range(self.expected) if i not in self.delivered and i not in self.dead_lettered]

    def summary(self, name: str, **extra: Any) -> str:
        reasons = Counter(f"{stage}/{reason}" for stage, reason in self.dead_lettered.values())
        fields = {
            "events": self.expected,
            "delivered": len(self.delivered),
            "dead_lettered": len(self.dead_lettered),
            "lost": len(self.lost),
            "duplicates": self.duplicates,
            "duplicate_pct": round(100 * self.duplicates / max(1, self.expected), 2),
            **extra,
            "dlq_reasons": dict(reasons),
        }
        return f"CAMPAIGN {name}: " + json.dumps(fields, sort_keys=False)


def delivered_ids(fake: FakeCleverTapProcess) -> Counter[int]:
    return Counter(int(r["evtData"]["eid"]) for r in fake.records() if "eid" in r.get("evtData", {}))


def dead_lettered_ids(bed: Bed, timeout: float = 5.0) -> dict[int, tuple[str, str]]:
    """Every id in the DLQ topic, with its `dlq.stage` and `dlq.reason` headers."""
    out: dict[int, tuple[str, str]] = {}
    n = sum(bed.kafka.end_offsets(bed.dlq_topic).values())
    if not n:
        return out
    decoder = Decoder()
    for m in bed.kafka.consume_all(bed.dlq_topic, n, timeout):
        headers = dict(message_headers(m))
        stage = (headers.get("dlq.stage") or b"").decode()
        reason = (headers.get("dlq.reason") or b"").decode()
        eid = to_message(decoder.decode(m.value()))["properties"]["eid"]
        out[int(eid)] = (stage, reason)
    return out


def books(bed: Bed, expected: int) -> Books:
    return Books(expected, delivered_ids(bed.fake), dead_lettered_ids(bed))


def write_destinations(bed: Bed, n: int) -> None:
    Path(bed.destinations_file).write_text(json.dumps(destinations(n)))

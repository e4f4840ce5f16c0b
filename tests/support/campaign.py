"""Fault campaigns: the service as a subprocess, hurt on purpose, reconciled by unique event id.

Every event carries its own id (`properties.eid`, which the transform copies into `evtData`),
so the books are exact: an id the fake CleverTap accepted is *delivered* (more than once: the
extras are *duplicates*), an id in the DLQ topic is *dead-lettered* (its stage and reason are
kept), and any other id is *lost*. Each campaign prints one summary line.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consumer import offset_map
from consumer.codec import Decoder, to_message
from consumer.source import message_headers
from tests.support.fake_clevertap import FakeCleverTapProcess
from tests.support.kafka import KafkaBed
from tests.support.service import Bed, ServiceProcess, wait_for

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


UNKNOWN_DESTINATION = "dest-unknown"


def events(n: int, n_destinations: int, start: int = 0, unknown_every: int = 0) -> list[dict[str, Any]]:
    """n track events with unique ids, spread over the destinations and 1000 users; with
    `unknown_every`, every such event names a destination nobody configured (DLQ, stage
    route)."""
    out = [
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
    if unknown_every:
        for e in out[unknown_every - 1 :: unknown_every]:
            e["destinationId"] = UNKNOWN_DESTINATION
    return out


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


# --- kill -9 campaigns ---------------------------------------------------------------------------

# How long before a kill a repeated record was first accepted tells why it was repeated: more
# than STALE_S (five commit periods) means a commit was late or missing; less than RECENT_S
# means it finished in the last commit periods; after the kill, it was on the wire.
STALE_S = 0.5
RECENT_S = 0.1
# After a kill the fake may still finish requests whose body it had read; let it, then look.
SETTLE_S = 0.3
# A kill lands this long at most (uniformly) after the delivered count passed its mark. A count
# is passed by an accepted batch, so killing on the crossing would always kill just after one
# (the worst case: about that batch repeated); a crash strikes at a random moment. The backlog
# drains at up to 50k events a second here, so a kill lands anywhere from the burst to the tail
# of retries under the faults (all kills of a run then count the same delivered ids).
KILL_JITTER_S = 0.2

Cover = dict[int, tuple[int, list[offset_map.Range]]]


def campaign_bed(
    kafka: KafkaBed,
    start_fake: Callable[..., FakeCleverTapProcess],
    new_topic: Callable[..., str],
    tmp_path: Path,
    *,
    n_destinations: int,
    partitions: int,
) -> Iterator[Bed]:
    """A campaign's bed (for a fixture to yield from): a fake CleverTap with `n_destinations`
    accounts, a fresh topic with `partitions` partitions and its DLQ, the destinations file."""
    fake = start_fake(accounts=accounts(n_destinations))
    b = Bed(kafka, fake, tmp_path, new_topic(partitions=partitions), new_topic(suffix="-dlq"))
    write_destinations(b, n_destinations)
    try:
        yield b
    finally:
        b.close()


def id_locations(bed: Bed, n: int, timeout: float = 60.0) -> dict[int, tuple[int, int]]:
    """Event id → (partition, offset) of the record that carries it, read back from the topic."""
    decoder = Decoder()
    out: dict[int, tuple[int, int]] = {}
    for m in bed.kafka.consume_all(bed.topic, n, timeout):
        eid = to_message(decoder.decode(m.value()))["properties"]["eid"]
        out[int(eid)] = (m.partition() or 0, m.offset() or 0)
    return out


def committed_cover(bed: Bed) -> Cover:
    """Per partition: the committed watermark and the done ranges its offset map records."""
    points = bed.kafka.committed_points(bed.group, bed.topic)
    return {p: (o, offset_map.decode(o, md)) for p, (o, md) in points.items()}


def _is_covered(cover: Cover, where: tuple[int, int]) -> bool:
    partition, offset = where
    if partition not in cover:
        return False
    watermark, done = cover[partition]
    return offset < watermark or any(start <= offset < end for start, end in done)


@dataclass
class KillFigures:
    """What one kill -9 cost, in repeated deliveries.

    `repeated`: records delivered by the killed instance (its last delivery of them) that a
    later instance delivered again, split by how long before the kill CleverTap accepted them
    and what the group's commit said at the kill: `stale` (≥ STALE_S before, not committed: a late
    or missing commit), `mid` (RECENT_S … STALE_S), `recent` (< RECENT_S), `in_flight` (accepted
    by CleverTap after the kill: requests on the wire when the process died, which no commit can
    cover), `covered` (committed as done, sent again anyway: the skip failed, a bug).
    `retries`: extra deliveries by the killed instance itself (HTTP retries of a request
    CleverTap had accepted, e.g. after a client timeout).
    """

    at: int  # distinct ids delivered when killed
    repeated: int = 0
    stale: int = 0
    mid: int = 0
    recent: int = 0
    in_flight: int = 0
    covered: int = 0
    retries: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "at": self.at,
            "repeated": self.repeated,
            "stale": self.stale,
            "mid": self.mid,
            "recent": self.recent,
            "in_flight": self.in_flight,
            "covered": self.covered,
            "retries": self.retries,
        }


@dataclass
class KillCampaign:
    """The books of a kill campaign and the figures of each kill."""

    books: Books
    kills: list[KillFigures]
    retries_after_last: int  # extra deliveries by the instance that ran to the end
    seed: int = 0
    dlq_duplicates: int = 0  # DLQ records beyond one per dead-lettered id

    @property
    def crash_duplicates(self) -> int:
        return sum(k.repeated for k in self.kills)

    @property
    def retry_duplicates(self) -> int:
        return sum(k.retries for k in self.kills) + self.retries_after_last

    def summary(self, name: str) -> str:
        n = max(1, self.books.expected)
        return self.books.summary(
            name,
            crash_duplicates=self.crash_duplicates,
            crash_duplicate_pct=round(100 * self.crash_duplicates / n, 2),
            retry_duplicates=self.retry_duplicates,
            dlq_duplicates=self.dlq_duplicates,
            seed=self.seed,
            per_kill=[k.as_dict() for k in self.kills],
        )


@dataclass
class _Kill:
    """What the harness saw around one kill: when it killed, how many records the fake had
    accepted once the dead instance could send no more (its records are in arrival order, so a
    count is a point in time), and the group's commit right after the kill."""

    at: float  # epoch seconds, the clock of the fake's acceptance times
    seen: int
    cover: Cover


def _accepted(bed: Bed) -> int:
    stats = bed.fake.stats()["records"]
    return int(stats["processed"])


def kill_campaign(
    bed: Bed,
    n_events: int,
    kills: int,
    *,
    seed: int,
    env: Mapping[str, str],
    faults: Mapping[str, float] = MIXED_FAULTS,
    unknown_every: int = 0,
    locate: bool = True,
    timeout: float = 120.0,
) -> KillCampaign:
    """Produce `n_events` unique ids, run the service under `faults`, kill -9 it `kills` times
    at random moments (once 10% … 90% of the events are delivered, after a random delay of up
    to KILL_JITTER_S), heal, wait until every offset is committed while the last instance still
    runs, stop it (SIGTERM, must exit 0), and reconcile.

    `locate=False` skips reading every id's offset back from the topic (seconds per 10k
    events): repeats are then not checked against the committed map (`covered` stays 0)."""
    rnd = random.Random(seed)
    bed.fake.set_faults(seed=seed, **faults)
    bed.produce(events(n_events, len(_destination_ids(bed)), unknown_every=unknown_every))
    where = id_locations(bed, n_events) if locate else {}
    service = bed.service(**env)
    service.wait_ready()
    seen: list[_Kill] = []
    for mark in sorted(rnd.uniform(0.1, 0.9) for _ in range(kills)):
        current = service

        def reached(m: float = mark) -> bool:
            return _accepted(bed) >= m * n_events

        def tail(s: ServiceProcess = current) -> str:
            return s.log_tail(2000)

        wait_for(reached, timeout, tail, interval=0.01)
        time.sleep(rnd.uniform(0, KILL_JITTER_S))
        at = time.time()
        service.kill()
        time.sleep(SETTLE_S)
        seen.append(_Kill(at, _accepted(bed), committed_cover(bed)))
        service = bed.service(**env)
        service.wait_ready()
    bed.fake.set_faults()  # heal, so the tail is not waiting for retries of stalls
    bed.wait_committed_to_end(timeout=180)  # while the service is still running
    result = books(bed, n_events)
    assert service.terminate() == 0, service.log_tail()
    run = _attribute(result, seen, bed.fake.timed_records(), where)
    run.seed = seed
    run.dlq_duplicates = sum(bed.kafka.end_offsets(bed.dlq_topic).values()) - len(result.dead_lettered)
    return run


def _attribute(
    result: Books,
    seen: list[_Kill],
    records: list[tuple[float, dict[str, Any]]],
    where: Mapping[int, tuple[int, int]],
) -> KillCampaign:
    """Every delivery of an id after its first is a duplicate: a retry when the same instance
    made both, else a crash duplicate of the kill that ended the instance of the earlier one."""
    figures = [KillFigures(at=0) for _ in seen]
    retries = [0] * (len(seen) + 1)
    last: dict[int, int] = {}  # id → record index of its latest delivery so far
    for index, (_, record) in enumerate(records):
        eid = record.get("evtData", {}).get("eid")
        if eid is None:
            continue
        eid = int(eid)
        instance = next((k for k, s in enumerate(seen) if index < s.seen), len(seen))
        previous = last.get(eid)
        last[eid] = index
        if previous is None:
            continue
        before = next((k for k, s in enumerate(seen) if previous < s.seen), len(seen))
        if before == instance:
            retries[instance] += 1
            continue
        f, kill = figures[before], seen[before]
        f.repeated += 1
        if eid in where and any(_is_covered(s.cover, where[eid]) for s in seen[before:instance]):
            f.covered += 1
        else:
            before_kill = kill.at - records[previous][0]
            if before_kill >= STALE_S:
                f.stale += 1
            elif before_kill >= RECENT_S:
                f.mid += 1
            elif before_kill >= 0:
                f.recent += 1
            else:
                f.in_flight += 1
    firsts: set[int] = set()
    for k, s in enumerate(seen):
        for _, record in records[: s.seen]:
            eid = record.get("evtData", {}).get("eid")
            if eid is not None:
                firsts.add(int(eid))
        figures[k].at = len(firsts)
        figures[k].retries = retries[k]
    return KillCampaign(result, figures, retries[-1])


def _destination_ids(bed: Bed) -> list[str]:
    doc = json.loads(Path(bed.destinations_file).read_text())
    return [d["id"] for d in doc["destinations"]]

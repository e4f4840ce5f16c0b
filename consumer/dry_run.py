"""Dry run: the service's chain with sinks that send and commit nothing, and a report.

For onboarding a new destination or a new producer: `clevertap-consumer run --dry-run` reads a
bounded range of the topics as a throwaway consumer group that never commits, and decodes,
routes and transforms exactly as the service does. Only the ends differ, so there is no dry-run
branch in the hot loop:

* the deliver end is `NullDeliverer` (every batch "would be delivered"), or, with
  `--validate-with-clevertap`, the real deliverer sending to `/1/upload?dryRun=1`, which
  CleverTap checks and answers like any upload (401, per-record codes 509-535) without storing;
* the dead-letter end is `RecordingDeadLetters`: a failure is counted and sampled, never written;
* the commit policy is `steps.NoCommits`: the throwaway group leaves no offsets behind.

The report says what would have happened: counts by outcome, dead-letter reasons (stage, reason,
CleverTap code), filter reasons, transform fixes, and a few sample records of each kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from . import metrics
from .batch import Batch
from .contracts import Failure
from .deliver import BatchResult
from .offsets import Entry
from .pipeline import Deliverer

SAMPLES_PER_KIND = 3
MAX_SAMPLE_BYTES = 2000


def _where(entry: Entry) -> str:
    return f"{entry.topic}/{entry.partition}@{entry.offset}"


@dataclass
class DryRunReport:
    """What the dry run saw, filled by the sinks and completed from the process's metrics."""

    validated: bool = False
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # stage, reason, code
    filtered: Counter[tuple[str, str]] = field(default_factory=Counter)  # destination, reason
    fixes: Counter[tuple[str, str]] = field(default_factory=Counter)  # kind, action
    records: Counter[tuple[str, str]] = field(default_factory=Counter)  # destination, account
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def sample(self, kind: str, item: dict[str, Any]) -> None:
        kept = self.samples.setdefault(kind, [])
        if len(kept) < SAMPLES_PER_KIND:
            kept.append(item)

    def failed(self, entry: Entry, failure: Failure) -> None:
        code = "" if failure.code is None else str(failure.code)
        self.failures[(failure.stage, failure.reason, code)] += 1
        self.sample(
            f"dead_lettered:{failure.stage}:{failure.reason}",
            {
                "at": _where(entry),
                "destination": entry.destination_id,
                "stage": failure.stage,
                "reason": failure.reason,
                "code": failure.code,
                "message": failure.message,
            },
        )

    def batched(self, batch: Batch) -> None:
        for full, entry in zip(batch.bodies, batch.entries, strict=True):
            destination = entry.destination_id or ""
            self.records[(destination, batch.target.account_id)] += 1
            body = full[:MAX_SAMPLE_BYTES]
            try:
                record: Any = orjson.loads(body)
            except orjson.JSONDecodeError:
                record = body.decode("utf-8", "replace") + "…"
            self.sample(
                f"would_deliver:{destination}",
                {"at": _where(entry), "destination": destination, "record": record},
            )

    def complete(self) -> DryRunReport:
        """Add the counts the chain keeps itself: outcomes, filter reasons and fixes (the dry-run
        process's own metrics start at zero, so they are this run's)."""
        self.outcomes.update(
            {o: n for (o, _), n in _counts(metrics.records_finished, ("outcome", "")).items()}
        )
        self.outcomes["consumed"] = sum(_counts(metrics.records_consumed, ("topic", "")).values())
        self.filtered.update(_counts(metrics.events_filtered, ("destination", "reason")))
        self.fixes.update(_counts(metrics.transform_fixes, ("kind", "action")))
        return self

    def as_json(self) -> dict[str, Any]:
        return {
            "validated_with_clevertap": self.validated,
            "outcomes": dict(self.outcomes),
            "dead_letter_reasons": [
                {"stage": s, "reason": r, "code": c or None, "events": n}
                for (s, r, c), n in self.failures.most_common()
            ],
            "filter_reasons": [
                {"destination": d, "reason": r, "events": n} for (d, r), n in self.filtered.most_common()
            ],
            "fixes": [{"kind": k, "action": a, "count": n} for (k, a), n in self.fixes.most_common()],
            "records": [
                {"destination": d, "account": a, "records": n} for (d, a), n in self.records.most_common()
            ],
            "samples": self.samples,
        }

    def text(self) -> str:
        """The report for a person: one section per question, then the samples."""
        delivered = "accepted by CleverTap (dryRun=1, not stored)" if self.validated else "would deliver"
        o = self.outcomes
        lines = [
            f"dry run: {o.get('consumed', 0)} events read; nothing "
            + ("stored by CleverTap" if self.validated else "sent")
            + ", nothing dead-lettered, nothing committed",
            "",
            "outcome",
            f"  {delivered:<45} {o.get('delivered', 0):>8}",
            f"  {'filtered':<45} {o.get('filtered', 0):>8}",
            f"  {'would be dead-lettered':<45} {o.get('dead_lettered', 0):>8}",
        ]
        sections: list[tuple[str, Iterable[tuple[str, int]]]] = [
            (
                "dead-letter reasons (stage reason [CleverTap code])",
                ((" ".join(p for p in key if p), n) for key, n in self.failures.most_common()),
            ),
            ("filtered (destination reason)", ((f"{d} {r}", n) for (d, r), n in self.filtered.most_common())),
            ("fixes (kind action)", ((f"{k} {a}", n) for (k, a), n in self.fixes.most_common())),
            (
                "CleverTap records (destination account)",
                ((f"{d} {a}", n) for (d, a), n in self.records.most_common()),
            ),
        ]
        for title, rows in sections:
            rendered = [f"  {label:<45} {n:>8}" for label, n in rows]
            if rendered:
                lines += ["", title, *rendered]
        if self.samples:
            lines += ["", "samples"]
            for kind, items in sorted(self.samples.items()):
                lines.append(f"  {kind}")
                lines += [f"    {orjson.dumps(item, default=str).decode()}" for item in items]
        return "\n".join(lines)


def _counts(metric: Any, labels: tuple[str, str]) -> Counter[tuple[str, str]]:
    """Non-zero samples of a counter, by two of its labels."""
    out: Counter[tuple[str, str]] = Counter()
    first, second = labels
    for family in metric.collect():
        for s in family.samples:
            if s.name.endswith("_total") and s.value:
                out[(s.labels.get(first, ""), s.labels.get(second, ""))] += int(s.value)
    return out


# --- sinks -------------------------------------------------------------------------------------


class DeliverSink(Deliverer, Protocol):
    """The pipeline's deliver end, as the service starts it."""

    def start(self) -> None: ...


class NullDeliverer:
    """The deliver end that sends nothing: every record of a batch counts as delivered."""

    def __init__(self, report: DryRunReport) -> None:
        self._report = report
        self._done: list[BatchResult] = []

    def start(self) -> None:
        """Nothing to start: no thread, no HTTP client."""

    def submit(self, batch: Batch) -> None:
        self._report.batched(batch)
        self._done.append(BatchResult(batch, [None] * len(batch)))

    def results(self) -> list[BatchResult]:
        done, self._done = self._done, []
        return done

    def in_flight(self) -> int:
        return len(self._done)

    def close(self, timeout: float) -> list[Batch]:
        return []


class SamplingDeliverer:
    """The real deliverer (sending to `?dryRun=1` URLs), with each batch sampled for the report."""

    def __init__(self, inner: DeliverSink, report: DryRunReport) -> None:
        self._inner = inner
        self._report = report

    def start(self) -> None:
        self._inner.start()

    def submit(self, batch: Batch) -> None:
        self._report.batched(batch)
        self._inner.submit(batch)

    def results(self) -> list[BatchResult]:
        return self._inner.results()

    def in_flight(self) -> int:
        return self._inner.in_flight()

    def close(self, timeout: float) -> list[Batch]:
        return self._inner.close(timeout)


class RecordingDeadLetters:
    """The dead-letter end that writes nothing: each failure is reported, and the message counts
    as dead-lettered at once (the interface of `consumer.dlq.DeadLetters`)."""

    def __init__(self, report: DryRunReport, on_written: Callable[[Entry], None]) -> None:
        self._report = report
        self._on_written = on_written

    def send(self, entry: Entry, failure: Failure) -> None:
        self._report.failed(entry, failure)
        self._on_written(entry)

    def poll(self) -> None:
        """Nothing is ever pending."""

    def pending(self) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0

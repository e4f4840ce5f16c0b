"""Counter arithmetic for tests: what changed in the metrics while a test ran.

Metrics live in the process-wide registry, so absolute values depend on every test that ran
before. A `MetricsDelta` snapshots the registry when created and answers "how much did this
sample grow since", so an end-to-end test can assert that the counters add up (consumed =
finished, dead-lettered = sum of the reasons, ...) regardless of test order.

    delta = MetricsDelta()
    run_the_pipeline()
    assert delta.total("clevertap_consumer_records_consumed_total") == 100
    assert delta.total("clevertap_consumer_dlq_records_total", stage="decode") == 3
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

Key = tuple[str, frozenset[tuple[str, str]]]


def _samples(registry: CollectorRegistry) -> dict[Key, float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in registry.collect()
        for s in family.samples
    }


class MetricsDelta:
    """Growth of every sample since construction (or the last `reset()`)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._registry = registry
        self._before = _samples(registry)

    def reset(self) -> None:
        self._before = _samples(self._registry)

    def total(self, name: str, **labels: str) -> float:
        """Sum of the growth of `name` over every series whose labels include `labels`.

        `name` is the sample name as exported (`..._total`, `..._bucket`, `..._count`).
        """
        wanted = set(labels.items())
        now = _samples(self._registry)
        return sum(
            value - self._before.get(key, 0.0)
            for key, value in now.items()
            if key[0] == name and wanted <= key[1]
        )

    def by(self, name: str, label: str, **labels: str) -> dict[str, float]:
        """Growth of `name` per value of `label` (only values that grew or shrank)."""
        wanted = set(labels.items())
        out: dict[str, float] = {}
        for key, value in _samples(self._registry).items():
            if key[0] != name or not wanted <= key[1]:
                continue
            grown = value - self._before.get(key, 0.0)
            if grown:
                group = dict(key[1]).get(label, "")
                out[group] = out.get(group, 0.0) + grown
        return out

"""Every label value README, the dashboard and the alert rules name is one the code emits, and
README lists every value the code emits: each stage's vocabulary is defined once, in the stage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from consumer import metrics
from consumer.codec import DECODE_REASONS
from consumer.deliver import HTTP_ERRORS, RETRY_REASONS

ROOT = Path(__file__).resolve().parents[2]

VOCABULARIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "http_request_errors_total": ("error", HTTP_ERRORS),
    "decode_failures_total": ("reason", DECODE_REASONS),
    "events_filtered_total": ("reason", metrics.FILTER_REASONS),
    "delivery_retries_total": ("reason", RETRY_REASONS),
    "batches_sent_total": ("outcome", metrics.BATCH_OUTCOMES),
    "records_finished_total": ("outcome", metrics.FINISH_OUTCOMES),
    "rebalances_total": ("event", metrics.REBALANCE_EVENTS),
    "offset_commits_total": ("outcome", metrics.COMMIT_OUTCOMES),
}


def _readme_row(name: str) -> str:
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith(f"| `clevertap_consumer_{name}`"):
            return line
    raise AssertionError(f"README has no metrics row for {name}")


@pytest.mark.parametrize("name", sorted(VOCABULARIES))
def test_readme_lists_exactly_the_values_the_code_emits(name: str) -> None:
    label, vocabulary = VOCABULARIES[name]
    meaning = _readme_row(name).split("|")[4]
    listed = set(re.findall(r"`([a-z0-9_]+)`", meaning)) - {label}
    assert listed == set(vocabulary), f"README {name}: {sorted(listed)} vs code {sorted(vocabulary)}"


def _matchers(text: str) -> list[tuple[str, str, str]]:
    """(metric, label, value alternatives) for every `metric{label="v"|=~"a|b"}` matcher."""
    out = []
    for metric, body in re.findall(r"clevertap_consumer_(\w+)\{([^}]*)\}", text):
        for label, value in re.findall(r'(\w+)=~?\\?"([^"\\]*)\\?"', body):
            out.append((metric, label, value))
    return out


@pytest.mark.parametrize(
    "path", ["dashboards/alerts.yaml", "dashboards/clevertap-consumer.json", "README.md"]
)
def test_dashboard_alert_and_readme_queries_match_emitted_values(path: str) -> None:
    text = (ROOT / path).read_text()
    text += "".join(
        f"clevertap_consumer_{m}{{{b}}}" for m, b in re.findall(r"\{P\}(\w+)\{\{([^}]*)\}\}", text)
    )
    for metric, label, value in _matchers(text):
        if metric in VOCABULARIES and VOCABULARIES[metric][0] == label:
            for alternative in value.split("|"):
                assert alternative in VOCABULARIES[metric][1], f"{path}: {metric}{{{label}={alternative!r}}}"

"""Times as operators type them."""

from __future__ import annotations

import pytest

from consumer.timeparse import parse_time

NOW = 1_795_400_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T08:00:00Z", 1_795_161_600_000),
        ("2026-11-20T08:00:00+02:00", 1_795_154_400_000),
        ("2026-11-20T08:00:00", 1_795_161_600_000),  # no offset: UTC, not the machine's zone
        ("2026-11-20", 1_795_132_800_000),
        ("1795400000", 1_795_400_000_000),
        ("1795400000123", 1_795_400_000_123),
        ("90s", NOW - 90_000),
        ("30m", NOW - 1_800_000),
        ("2h", NOW - 7_200_000),
        ("7d", NOW - 604_800_000),
        ("1w", NOW - 604_800_000),
        (" 2h ", NOW - 7_200_000),
    ],
)
def test_accepted_forms(text: str, expected: int) -> None:
    assert parse_time(text, now_ms=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2h ago", "-5m", "2026-13-01", "", "12y"])
def test_anything_else_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_time(text, now_ms=NOW)

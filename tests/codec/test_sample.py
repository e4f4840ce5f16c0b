"""`sample-events`: the same corpus for the same seed, valid JSON lines, the documented mix."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import orjson
import pytest
from click.testing import CliRunner

from consumer.cli import main
from consumer.sample import MIX, kind_of, sample_events


def run(*args: str) -> bytes:
    result = CliRunner().invoke(main, ["sample-events", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def test_same_seed_same_bytes_other_seed_other_events() -> None:
    first = run("300", "--seed", "42", "--destinations", "a,b")
    assert first == run("300", "--seed", "42", "--destinations", "a,b")
    assert first != run("300", "--seed", "43", "--destinations", "a,b")
    assert first.startswith(
        run("10", "--seed", "42", "--destinations", "a,b")
    )  # longer runs extend shorter ones


def test_lines_are_json_objects_with_the_given_destinations() -> None:
    lines = run("400", "--seed", "7", "--destinations", "dest-x, dest-y ,dest-z").splitlines()
    assert len(lines) == 400
    events = [orjson.loads(line) for line in lines]
    assert all(isinstance(e, dict) and e["messageId"] and e["type"] for e in events)
    assert {e["destinationId"] for e in events} == {"dest-x", "dest-y", "dest-z"}
    assert len({e["messageId"] for e in events}) == 400
    assert run("0") == b""


def test_the_mix_and_the_shapes_the_transform_needs() -> None:
    events = list(sample_events(6000, seed=3))
    counts = Counter(kind_of(e) for e in events)
    assert set(counts) == set(MIX)
    for kind, share in MIX.items():
        assert counts[kind] / len(events) == pytest.approx(share, abs=0.02), kind

    identifies = [e for e in events if e["type"] == "identify"]
    assert all(e["traits"]["email"] and e.get("userId") is not None for e in identifies)
    with_token = [e for e in identifies if "token" in e["context"].get("device", {})]
    assert 0 < len(with_token) < len(identifies)
    assert {e["context"]["os"]["name"] for e in with_token} == {"Android", "iOS"}
    assert {e["channel"] for e in events} == {"web", "mobile"}
    assert any(isinstance(e.get("userId"), int) for e in events)
    assert any("userId" not in e for e in events)  # anonymous-only traffic
    orders = [e for e in events if kind_of(e) == "order"]
    assert all(isinstance(p, dict) for e in orders for p in e["properties"]["products"])
    aliases = [e for e in events if e["type"] == "alias"]
    assert all(e["previousId"] == e["anonymousId"] and e["userId"] for e in aliases)

    moments = [datetime.fromisoformat(e["originalTimestamp"].replace("Z", "+00:00")) for e in events]
    assert moments == sorted(moments)


def test_no_destinations_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["sample-events", "5", "--destinations", " , "])
    assert result.exit_code == 2
    assert "destination" in result.output

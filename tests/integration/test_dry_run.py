"""`run --dry-run` on real topics: the service's decode, route and transform, a report, and
nothing sent, dead-lettered or committed (unless `--validate-with-clevertap`: dryRun=1)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from consumer.sample import sample_events
from tests.support.service import DESTINATION_IDS, DESTINATIONS, Bed, Expected

pytestmark = pytest.mark.kafka


def _dry_run(bed: Bed, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer", "run", *args],
        env=bed.env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _groups(bed: Bed) -> set[str]:
    admin = AdminClient({"bootstrap.servers": bed.kafka.bootstrap})
    listed = admin.list_consumer_groups().result(10)
    return {g.group_id for g in listed.valid}


def _events() -> list[dict[str, Any]]:
    events = list(sample_events(150, seed=41, destinations=DESTINATION_IDS))
    events += [
        {"type": "track", "event": "Odd", "userId": f"x{i}", "destinationId": "nobody"} for i in range(4)
    ]
    events += [  # two the default profile fixes: a bad timestamp, an over-long property key
        {
            "type": "track",
            "event": "Fixed",
            "userId": f"f{i}",
            "destinationId": "dest-one",
            "timestamp": "not a time",
            "properties": {"k" * 130: "v"},
        }
        for i in range(2)
    ]
    return events


def test_dry_run_reports_on_real_topics_and_sends_commits_and_dead_letters_nothing(bed: Bed) -> None:
    events = _events()
    since = int(time.time() * 1000) - 1000
    bed.produce(events)
    expected = Expected(events)
    done = _dry_run(bed, "--dry-run", "--since", str(since), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)

    dead = sum(expected.rejected.values())
    assert report["outcomes"] == {
        "consumed": len(events),
        "delivered": len(events) - dead - expected.filtered,
        "dead_lettered": dead,
        "filtered": expected.filtered,
    }
    reasons = {(r["stage"], r["reason"]): r["events"] for r in report["dead_letter_reasons"]}
    assert reasons[("route", "unknown_destination")] == 4
    assert sum(reasons.values()) == dead
    assert sum(r["records"] for r in report["records"]) == expected.total_records
    fixes = {(f["kind"], f["action"]): f["count"] for f in report["fixes"]}
    assert fixes == {("invalid_timestamp", "dropped"): 2, ("key_too_long", "dropped"): 2}
    assert report["samples"]["dead_lettered:route:unknown_destination"][0]["destination"] is None
    [sample] = report["samples"]["would_deliver:dest-one"][:1]
    assert sample["record"]["type"] in ("event", "profile")
    assert sample["at"].startswith(f"{bed.topic}/")

    assert bed.fake.stats()["requests"] == {}, "nothing sent"
    assert sum(bed.kafka.end_offsets(bed.dlq_topic).values()) == 0, "nothing dead-lettered"
    assert not {g for g in _groups(bed) if g.startswith(bed.group)}, "no group offsets left behind"

    text = _dry_run(bed, "--dry-run", "--since", str(since))
    assert text.returncode == 0, text.stderr
    assert f"dry run: {len(events)} events read; nothing sent" in text.stdout
    assert "route unknown_destination" in text.stdout


def test_dry_run_validates_with_clevertap_without_storing(bed: Bed) -> None:
    doc = json.loads(json.dumps(DESTINATIONS))
    doc["destinations"][1]["passcode"] = "wrong-pw-d41"  # dest-two, ACC-TWO: CleverTap says 401
    doc["destinations"][1]["onAuthFailure"] = "hold"  # the service would wait; a dry run reports
    bed.destinations_file.write_text(json.dumps(doc))
    events = _events()
    since = int(time.time() * 1000) - 1000
    bed.produce(events)
    expected = Expected(events, doc)
    done = _dry_run(
        bed, "--validate-with-clevertap", "--since", str(since), "--format", "json", DRY_RUN="true"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["validated_with_clevertap"] is True
    reasons = {(r["stage"], r["reason"]): r["events"] for r in report["dead_letter_reasons"]}
    two = [e for e in events if e["destinationId"] == "dest-two"]
    rejected_two = Expected(two, doc)
    unauthorized = len(two) - sum(rejected_two.rejected.values()) - rejected_two.filtered
    assert unauthorized > 0
    assert reasons[("deliver", "unauthorized")] == unauthorized
    assert report["outcomes"]["dead_lettered"] == sum(expected.rejected.values()) + unauthorized
    stats = bed.fake.stats()
    assert stats["requests"].get("dry_run", 0) > 0, "the ACC-ONE batches were validated"
    assert bed.fake.records() == [], "dryRun=1 stores nothing"
    assert "wrong-pw-d41" not in done.stdout + done.stderr

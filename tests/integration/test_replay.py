"""`clevertap-consumer replay`: a time range delivered again, the live group left alone."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter

import pytest

from consumer.sample import sample_events
from tests.support.service import DESTINATION_IDS, Bed, Expected

pytestmark = pytest.mark.kafka


def _replay(bed: Bed, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer", "replay", *args],
        env=bed.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_replay_delivers_exactly_the_range_again_and_leaves_the_live_group_alone(bed: Bed) -> None:
    before = list(sample_events(300, seed=21, destinations=DESTINATION_IDS))
    after = list(sample_events(300, seed=22, destinations=DESTINATION_IDS))
    bed.produce(before)
    time.sleep(1.5)  # Kafka timestamps are the produce times: leave a gap between the two sets
    since_ms = int(time.time() * 1000)
    time.sleep(0.5)
    bed.produce(after)
    live = bed.service()
    live.wait_ready()
    bed.wait_committed_to_end()
    assert live.terminate() == 0
    committed = bed.kafka.committed(bed.group, bed.topic)
    bed.fake.reset()

    done = _replay(bed, "--since", str(since_ms))
    assert done.returncode == 0, done.stdout + done.stderr

    assert bed.delivered() == Expected(after).records
    assert bed.kafka.committed(bed.group, bed.topic) == committed, "the live group's offsets are untouched"


def test_replay_can_be_limited_to_one_destination(bed: Bed) -> None:
    events = list(sample_events(400, seed=23, destinations=DESTINATION_IDS))
    since_ms = int(time.time() * 1000) - 1000
    bed.produce(events)

    done = _replay(bed, "--since", str(since_ms), "--destination", "dest-two")
    assert done.returncode == 0, done.stdout + done.stderr

    only_two = Expected([e for e in events if e["destinationId"] == "dest-two"])
    assert bed.delivered() == only_two.records
    assert sum(only_two.records["ACC-TWO"].values()) > 0
    assert bed.delivered()["ACC-ONE"] == Counter()


def test_replay_refuses_bad_arguments_before_touching_kafka(bed: Bed) -> None:
    bad_time = _replay(bed, "--since", "yesterday")
    assert bad_time.returncode == 2
    assert "--since" in bad_time.stderr
    unknown = _replay(bed, "--since", "1h", "--destination", "nope")
    assert unknown.returncode == 2
    assert "nope" in unknown.stderr
    same_group = _replay(bed, "--since", "1h", "--group", bed.group)
    assert same_group.returncode == 2
    assert "--group" in same_group.stderr

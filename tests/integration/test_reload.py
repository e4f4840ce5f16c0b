"""Destinations reload without a restart, against real Kafka and the fake CleverTap: an edited
file, a Kubernetes-style `..data` symlink swap, SIGHUP, and a broken file that changes nothing."""

from __future__ import annotations

import copy
import json
import os
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consumer.deletion import build_request
from consumer.source import message_headers
from tests.support.fake_clevertap import DEFAULT_ACCOUNTS
from tests.support.service import DESTINATIONS, Bed, Expected, ServiceProcess, canonical, wait_for

pytestmark = pytest.mark.kafka

NEW_DESTINATION = {"id": "dest-new", "accountId": "ACC-TWO", "passcode": DEFAULT_ACCOUNTS["ACC-TWO"]}


def _events(destination: str, n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {"type": "track", "event": f"Reload {tag}", "userId": f"{tag}-{i}", "destinationId": destination}
        for i in range(n)
    ]


def _with(*extra: dict[str, Any], drop: str | None = None) -> dict[str, Any]:
    doc = copy.deepcopy(DESTINATIONS)
    doc["destinations"] = [d for d in doc["destinations"] if d["id"] != drop] + list(extra)
    return doc


def _reloads(service: ServiceProcess, outcome: str) -> float:
    return service.metric_sum("clevertap_consumer_config_reloads_total", outcome=outcome)


def _delivered(bed: Bed, account: str, events: list[dict[str, Any]], doc: dict[str, Any]) -> None:
    """Every record the transform makes of `events` arrives at `account`."""
    want = Expected(events, doc).records[account]
    assert sum(want.values()) == len(events)
    wait_for(
        lambda: not (want - Counter(canonical(r) for r in bed.fake.records(account))),
        60,
        lambda: f"not delivered: {sum(want.values())} records for {account}",
    )


def _dead_letter_reasons(bed: Bed, n: int) -> Counter[bytes]:
    return Counter(dict(message_headers(m))["dlq.reason"] or b"" for m in bed.dead_letters(n))


def test_an_edited_file_applies_without_restart_and_a_broken_one_keeps_the_old(bed: Bed) -> None:
    service = bed.service()
    service.wait_ready()
    bed.produce(_events("dest-new", 3, "before"))
    bed.wait_committed_to_end()
    assert _dead_letter_reasons(bed, 3) == {b"unknown_destination": 3}

    # A new destination, and dest-two removed.
    edited = _with(NEW_DESTINATION, drop="dest-two")
    bed.destinations_file.write_text(json.dumps(edited))
    wait_for(lambda: _reloads(service, "applied") == 1, 30, service.log_tail)
    new_events = _events("dest-new", 20, "added")
    bed.produce(new_events + _events("dest-two", 4, "removed"))
    _delivered(bed, "ACC-TWO", new_events, edited)
    bed.wait_committed_to_end()
    assert _dead_letter_reasons(bed, 7) == {b"unknown_destination": 7}, "removed dest-two: 4 more"

    # A broken file: counted, logged, and the running configuration stays.
    bed.destinations_file.write_text('{"destinations": [{"id": "x", "accountId": ""')
    wait_for(lambda: _reloads(service, "invalid") == 1, 30, service.log_tail)
    assert service.metric_sum("clevertap_consumer_config_last_reload_successful") == 0
    still = _events("dest-new", 10, "kept")
    bed.produce(still)
    _delivered(bed, "ACC-TWO", still, edited)
    assert _reloads(service, "applied") == 1
    assert "keeping the previous configuration" in service.log_tail(20000)

    # A binding for a topic the service is not subscribed to would never see a record: refused
    # on reload exactly as at start-up.
    unsubscribed = {**edited, "sources": [{"topic": "never-subscribed", "destination": "dest-new"}]}
    bed.destinations_file.write_text(json.dumps(unsubscribed))
    wait_for(lambda: _reloads(service, "invalid") == 2, 30, service.log_tail)
    assert "KAFKA_TOPICS does not list: never-subscribed" in service.log_tail(20000)

    # Fixed again: applied, the gauge recovers.
    bed.destinations_file.write_text(json.dumps(edited))
    wait_for(lambda: _reloads(service, "applied") == 2, 30, service.log_tail)
    assert service.metric_sum("clevertap_consumer_config_last_reload_successful") == 1
    assert service.terminate() == 0


def _kubernetes_volume(root: Path, files: dict[str, str], version: str) -> None:
    """What the kubelet does for a ConfigMap/Secret volume: files in a new timestamped folder,
    then `..data` swapped to it with one rename; the visible names are symlinks via `..data`."""
    folder = root / f"..{version}"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
        link = root / name
        if not link.is_symlink():
            link.symlink_to(Path("..data") / name)
    tmp = root / "..data_tmp"
    tmp.symlink_to(folder.name)
    os.replace(tmp, root / "..data")


def test_a_kubernetes_symlink_swap_and_sighup_are_picked_up(bed: Bed, tmp_path: Path) -> None:
    config, secrets = tmp_path / "config", tmp_path / "secrets"
    config.mkdir()
    secrets.mkdir()
    passcode_file = secrets / "acc-one"
    one = {"id": "dest-one", "accountId": "ACC-ONE", "passcodeFile": str(passcode_file)}
    first = {"destinations": [one]}
    _kubernetes_volume(secrets, {"acc-one": DEFAULT_ACCOUNTS["ACC-ONE"]}, "2026_12_01_00_00_00.1")
    _kubernetes_volume(config, {"destinations.json": json.dumps(first)}, "2026_12_01_00_00_00.1")
    service = bed.service(DESTINATIONS_FILE=str(config / "destinations.json"))
    service.wait_ready()

    # The ConfigMap changes: a second destination appears.
    second = {"destinations": [one, NEW_DESTINATION]}
    _kubernetes_volume(config, {"destinations.json": json.dumps(second)}, "2026_12_01_00_01_00.2")
    wait_for(lambda: _reloads(service, "applied") == 1, 30, service.log_tail)
    events = _events("dest-new", 10, "swapped")
    bed.produce(events)
    _delivered(bed, "ACC-TWO", events, second)

    # SIGHUP reloads even when nothing changed.
    assert service.process is not None
    service.process.send_signal(signal.SIGHUP)
    wait_for(lambda: _reloads(service, "applied") == 2, 30, service.log_tail)

    # The Secret is rotated (to a passcode CleverTap refuses): new batches use it.
    _kubernetes_volume(secrets, {"acc-one": "rotated-wrong-pw-3c"}, "2026_12_01_00_02_00.3")
    wait_for(lambda: _reloads(service, "applied") == 3, 30, service.log_tail)
    bed.produce(_events("dest-one", 5, "rotated"))
    bed.wait_committed_to_end()
    assert _dead_letter_reasons(bed, 5) == {b"unauthorized": 5}
    assert service.terminate() == 0
    assert "rotated-wrong-pw-3c" not in service.log_path.read_text()


def test_a_reloaded_destination_also_serves_user_deletions(bed: Bed, new_topic: Callable[..., str]) -> None:
    topic = new_topic(suffix="-regulation")
    service = bed.service(KAFKA_REGULATION_TOPIC=topic)
    service.wait_ready()
    bed.destinations_file.write_text(json.dumps(_with(NEW_DESTINATION)))
    wait_for(lambda: _reloads(service, "applied") == 1, 30, service.log_tail)
    bed.kafka.produce(topic, [build_request("dest-new", ["gone-7"], [])])
    wait_for(
        lambda: bed.fake.deletions("ACC-TWO") == [{"account": "ACC-TWO", "identity": ["gone-7"]}],
        60,
        lambda: f"{bed.fake.deletions()}\n{service.log_tail()}",
    )
    assert service.terminate() == 0

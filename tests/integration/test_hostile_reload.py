"""Hostile input through the running service: a CleverTap that echoes the passcode in its error
replies, a wrong passcode held (`onAuthFailure: hold`) until a reload fixes it, and reloads that
must be refused (a passcode too short to redact, a YAML alias bomb) while the old configuration
keeps working. Real broker, real fake CleverTap, the real `clevertap-consumer` processes."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest

from consumer.source import message_headers
from tests.support.fake_clevertap import DEFAULT_ACCOUNTS
from tests.support.service import DESTINATIONS, Bed, Expected, ServiceProcess, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


def _events(destination: str, n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {"type": "track", "event": f"Hostile {tag}", "userId": f"{tag}-{i}", "destinationId": destination}
        for i in range(n)
    ]


def _reloads(service: ServiceProcess, outcome: str) -> float:
    return service.metric_sum("clevertap_consumer_config_reloads_total", outcome=outcome)


def _doc(**changes: Any) -> dict[str, Any]:
    """DESTINATIONS with dest-one's keys changed."""
    doc = copy.deepcopy(DESTINATIONS)
    doc["destinations"][0].update(changes)
    return doc


def _cli(bed: Bed, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer", *args],
        env=bed.env(),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_a_passcode_clevertap_echoes_back_appears_nowhere(bed: Bed) -> None:
    """401 for one account and 503 (retried until the budget ends) for the other, each reply
    quoting the passcode it was sent: the text reaches logs and DLQ messages only redacted."""
    bed.fake.set_faults(account="ACC-ONE", echo_passcode=401)
    bed.fake.set_faults(account="ACC-TWO", echo_passcode=503)
    events = _events("dest-one", 10, "echo401") + _events("dest-two", 10, "echo503")
    bed.produce(events)
    service = bed.service(LOG_LEVEL="DEBUG", DELIVERY_RETRY_BUDGET_SECONDS="2")
    service.wait_ready()
    bed.wait_committed_to_end(timeout=120)
    scrape = service.metrics_text()
    dead = bed.dead_letters(20)
    assert len(dead) == 20
    reasons = {dict(message_headers(m))["dlq.reason"] for m in dead}
    assert reasons == {b"unauthorized", b"retries_exhausted"}
    messages = [dict(message_headers(m))["dlq.message"] or b"" for m in dead]
    assert all(b"Invalid passcode *** for account" in m for m in messages), messages[:2]
    assert service.terminate() == 0
    inspect_table = _cli(bed, "dlq", "inspect", "--topic", bed.dlq_topic)
    inspect_json = _cli(bed, "dlq", "inspect", "--topic", bed.dlq_topic, "--format", "json", "--decode")
    assert inspect_table.returncode == 0, inspect_table.stderr
    assert inspect_json.returncode == 0, inspect_json.stderr
    assert len(inspect_json.stdout.splitlines()) == 20
    log = service.log_path.read_text()
    assert "401" in log, "the refusal itself is logged"
    for passcode in DEFAULT_ACCOUNTS.values():
        assert passcode not in log
        assert passcode not in scrape
        for out in (inspect_table, inspect_json):
            assert passcode not in out.stdout + out.stderr
        for m in dead:
            assert passcode.encode() not in b"".join((v or b"") for _, v in message_headers(m))


def test_held_records_are_delivered_once_a_reload_fixes_the_passcode(bed: Bed) -> None:
    wrong = _doc(passcode="wrong-passcode-71", onAuthFailure="hold")
    bed.destinations_file.write_text(json.dumps(wrong))
    held = _events("dest-one", 300, "held")
    bed.produce(held)
    service = bed.service()
    service.wait_ready()
    wait_for(
        lambda: service.metric_sum("clevertap_consumer_auth_breaker_open", account="ACC-ONE") == 1,
        60,
        service.log_tail,
    )
    fixed = _doc(onAuthFailure="hold")
    bed.destinations_file.write_text(json.dumps(fixed))
    wait_for(lambda: _reloads(service, "applied") == 1, 30, service.log_tail)
    after = _events("dest-one", 50, "after")
    bed.produce(after)
    # The breaker lets one probe through every 30 s: the held batches go out after it.
    bed.wait_committed_to_end(timeout=150)
    missing, duplicates = Expected(held + after, fixed).compare(bed.delivered())
    assert (missing, duplicates) == (0, 0), service.log_tail()
    assert bed.dead_letters(1, timeout=3) == []
    assert service.metric_sum("clevertap_consumer_auth_breaker_open", account="ACC-ONE") == 0
    assert service.terminate() == 0
    assert "wrong-passcode-71" not in service.log_path.read_text()


def _laughs() -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\ndestinations: *l8\n"


def test_a_reload_refuses_a_short_passcode_and_an_alias_bomb_and_keeps_the_old(bed: Bed) -> None:
    service = bed.service()
    service.wait_ready()
    short = "Zq9!x"  # five characters: every occurrence could not be redacted safely
    bed.destinations_file.write_text(json.dumps(_doc(passcode=short)))
    wait_for(lambda: _reloads(service, "invalid") == 1, 30, service.log_tail)
    first = _events("dest-one", 20, "kept-short")
    bed.produce(first)
    bed.wait_committed_to_end()

    bed.destinations_file.write_text(_laughs())
    wait_for(lambda: _reloads(service, "invalid") == 2, 30, service.log_tail)
    second = _events("dest-one", 20, "kept-bomb")
    bed.produce(second)
    bed.wait_committed_to_end()

    missing, duplicates = Expected(first + second).compare(bed.delivered())
    assert (missing, duplicates) == (0, 0), "the old passcode stays in use"
    assert bed.dead_letters(1, timeout=3) == []
    assert _reloads(service, "applied") == 0
    assert service.metric_sum("clevertap_consumer_config_last_reload_successful") == 0
    assert service.running
    assert service.terminate() == 0
    log = service.log_path.read_text()
    assert "destination 'dest-one': passcode is shorter than 6 characters" in log
    assert "aliases expand to more than 1,000,000 values" in log
    assert log.count("keeping the previous configuration") == 2
    assert "Traceback" not in log
    assert short not in log

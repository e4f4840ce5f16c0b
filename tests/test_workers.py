"""WORKERS: how the supervisor splits the per-pod settings between its children (the processes
themselves are tested in tests/integration/test_workers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.destinations import ConfigError
from consumer.settings import Settings, load_settings
from consumer.workers import PORT_FILE_ENV, child_environment, in_flight_share, write_port_file

REQUIRED = {
    "kafka_bootstrap_servers": "127.0.0.1:9092",
    "kafka_topics": "events",
    "destinations_file": "/etc/destinations.yaml",
}


@given(cap=st.integers(1, 15), workers=st.integers(1, 15))
def test_the_shares_add_up_to_the_cap_and_differ_by_at_most_one(cap: int, workers: int) -> None:
    if workers > cap:
        return
    shares = [in_flight_share(cap, workers, i) for i in range(workers)]
    assert sum(shares) == cap
    assert min(shares) >= 1
    assert max(shares) - min(shares) <= 1


def test_more_workers_than_request_slots_stops_start_up_naming_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SECRETS_DIRS", str(tmp_path / "none"))
    with pytest.raises(ConfigError) as err:
        load_settings(**REQUIRED, workers=4, clevertap_max_in_flight=3)
    assert "WORKERS (4)" in str(err.value)
    assert "CLEVERTAP_MAX_IN_FLIGHT (3)" in str(err.value)


def _settings(**values: object) -> Settings:
    return Settings(_secrets_dir=None, **{**REQUIRED, **values})  # type: ignore[arg-type]


def test_each_child_gets_its_share_a_loopback_port_and_one_of_them_the_deletion_flow(tmp_path: Path) -> None:
    settings = _settings(
        workers=2,
        clevertap_max_in_flight=15,
        kafka_group_instance_id="pod-7",
        kafka_regulation_topic="regulation",
    )
    envs = [
        child_environment(
            settings,
            i,
            metrics_dir=tmp_path,
            port_file=tmp_path / f"{i}.port",
            overrides={"kafka_bootstrap_servers": "broker:9092"},
            environ={"WORKERS": "2", "KAFKA_REGULATION_TOPIC": "regulation", "PATH": "/bin"},
        )
        for i in range(2)
    ]
    assert [e["CLEVERTAP_MAX_IN_FLIGHT"] for e in envs] == ["8", "7"]
    assert [e["KAFKA_GROUP_INSTANCE_ID"] for e in envs] == ["pod-7-0", "pod-7-1"]
    assert [e["KAFKA_REGULATION_TOPIC"] for e in envs] == ["regulation", ""]
    for e in envs:
        assert (e["WORKERS"], e["METRICS_HOST"], e["METRICS_PORT"]) == ("1", "127.0.0.1", "0")
        assert e["KAFKA_BOOTSTRAP_SERVERS"] == "broker:9092"  # a command-line override travels too
        assert e["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
        assert e["PATH"] == "/bin"


def test_a_child_writes_its_probe_port_where_the_supervisor_looks(tmp_path: Path) -> None:
    target = tmp_path / "worker-0.port"
    write_port_file(43210, {PORT_FILE_ENV: str(target)})
    assert target.read_text() == "43210"
    write_port_file(1, {})  # a single process: nothing written, nothing raised


def test_a_forgotten_partition_stops_counting_in_the_merged_metrics(tmp_path: Path) -> None:
    """Multiprocess mode keeps a removed series' last value in the worker's file: the merged
    lag of a revoked partition must not stay at its old value next to its new owner's."""
    import os
    import subprocess
    import sys

    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    worker = (
        "from consumer import metrics\n"
        "metrics.consumer_lag.labels(topic='t', partition='0').set(500)\n"
        "metrics.consumer_lag.labels(topic='t', partition='1').set(7)\n"
        "metrics.forget_partitions([('t', 0)])\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", worker], env=env, check=True)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    lag = {
        s.labels["partition"]: s.value
        for family in registry.collect()
        if family.name == "clevertap_consumer_consumer_lag"
        for s in family.samples
    }
    assert lag.get("0", 0) == 0
    assert lag["1"] == 7

"""The health server over real HTTP on loopback: what a kubelet and Prometheus would see."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumer.health import Health, HealthServer, serve


def _get(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=5.0)


def test_healthz_fails_when_beats_stop_and_recovers_on_the_next_beat() -> None:
    now = [1000.0]  # a clock the test moves: a loaded machine cannot make a request late
    health = Health(stall_after=30, clock=lambda: now[0], publish=False)
    srv = serve(health, "127.0.0.1", 0)
    try:
        health.beat()
        ok = _get(f"{srv.url}/healthz")
        assert ok.status_code == 200
        assert ok.headers["content-type"] == "application/json"
        assert ok.json()["status"] == "ok"

        now[0] += 31
        stalled = _get(f"{srv.url}/healthz")
        assert stalled.status_code == 503
        body = stalled.json()
        assert body["status"] == "stalled"
        assert "no progress" in body["reason"]
        assert body["last_beat_seconds_ago"] >= 30

        health.beat()
        assert _get(f"{srv.url}/livez").status_code == 200
    finally:
        srv.close()


def test_healthz_gives_start_up_a_grace_period_then_fails_if_the_loop_never_starts() -> None:
    now = [1000.0]  # a clock the test moves: a loaded machine cannot make it late
    health = Health(stall_after=60, start_grace=30, clock=lambda: now[0], publish=False)
    srv = serve(health, "127.0.0.1", 0)
    try:
        starting = _get(f"{srv.url}/healthz")
        assert starting.status_code == 200
        assert starting.json()["reason"] == "starting"
        now[0] += 31
        never = _get(f"{srv.url}/healthz")
        assert never.status_code == 503
        assert "has not started" in never.json()["reason"]
    finally:
        srv.close()


def test_a_stalled_loop_during_shutdown_stays_live_but_not_ready() -> None:
    health = Health(stall_after=0.2, publish=False)
    srv = serve(health, "127.0.0.1", 0)
    try:
        health.beat()
        health.set_assigned(3)
        health.set_shutting_down()
        time.sleep(0.4)  # draining may block the loop; a restart now would only lose the drain
        assert _get(f"{srv.url}/healthz").status_code == 200
        ready = _get(f"{srv.url}/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not_ready", "reason": "shutting down"}
    finally:
        srv.close()


def test_readyz_follows_assignment_broker_and_shutdown(health: Health, server: HealthServer) -> None:
    url = f"{server.url}/readyz"
    before = _get(url)
    assert before.status_code == 503
    assert "assignment" in before.json()["reason"]

    health.set_assigned(0)  # more consumers than partitions: nothing for us, still a member
    empty = _get(url)
    assert empty.status_code == 200
    assert empty.json() == {"status": "ready", "assigned_partitions": 0}

    health.set_assigned(4)
    health.set_broker_connected(False)
    down = _get(url)
    assert down.status_code == 503
    assert down.json()["reason"] == "Kafka broker unreachable"
    health.set_assigned(4)  # a rebalance callback does not prove the broker is back
    assert _get(url).status_code == 503

    health.set_broker_connected(True)
    assert _get(url).json() == {"status": "ready", "assigned_partitions": 4}

    health.set_shutting_down()
    assert _get(url).status_code == 503


def test_ready_gauge_on_metrics_follows_readiness() -> None:
    health = Health()
    srv = serve(health, "127.0.0.1", 0)

    def ready_value() -> float:
        text = _get(f"{srv.url}/metrics").text
        for family in text_string_to_metric_families(text):
            if family.name == "clevertap_consumer_ready":
                return family.samples[0].value
        raise AssertionError("clevertap_consumer_ready not exported")

    try:
        assert ready_value() == 0
        health.set_assigned(2)
        assert ready_value() == 1
        health.set_broker_connected(False)
        assert ready_value() == 0
        health.set_broker_connected(True)
        health.set_shutting_down()
        assert ready_value() == 0
    finally:
        srv.close()


def test_metrics_serves_prometheus_text_and_openmetrics(server: HealthServer) -> None:
    base = server.url
    text = _get(f"{base}/metrics")
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    names = {f.name for f in text_string_to_metric_families(text.text)}
    assert {"clevertap_consumer_records_consumed", "clevertap_consumer_ready", "process_cpu_seconds"} <= names

    om = _get(f"{base}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF")

    gz = httpx.get(f"{base}/metrics", headers={"Accept-Encoding": "gzip"}, timeout=5.0)
    assert gz.headers.get("content-encoding") == "gzip"
    assert "clevertap_consumer_ready" in gz.text

    missing = _get(f"{base}/nope")
    assert missing.status_code == 404
    assert "/metrics" in missing.json()["endpoints"]


def test_probes_answer_while_other_threads_update_state(health: Health, server: HealthServer) -> None:
    base = server.url
    health.set_assigned(1)
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set():
            health.beat()
            health.set_broker_connected(n % 2 == 0)
            n += 1

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        with httpx.Client(timeout=5.0) as client:
            for _ in range(20):
                assert client.get(f"{base}/healthz").status_code == 200
                assert client.get(f"{base}/readyz").status_code in (200, 503)
    finally:
        stop.set()
        writer.join()


def test_port_in_use_is_an_error_and_close_frees_the_port() -> None:
    health = Health(publish=False)
    first = serve(health, "127.0.0.1", 0)
    try:
        with pytest.raises(OSError, match="in use"):
            serve(health, "127.0.0.1", first.port)
    finally:
        first.close()
        first.close()  # idempotent
    again = serve(health, "127.0.0.1", first.port)
    try:
        assert _get(f"{again.url}/healthz").status_code == 200
    finally:
        again.close()


def test_serves_on_ipv6_loopback() -> None:
    health = Health(publish=False)
    srv = serve(health, "::1", 0)
    try:
        assert srv.url.startswith("http://[::1]:")
        assert _get(f"{srv.url}/healthz").status_code == 200
    finally:
        srv.close()

"""The Grafana dashboard: generated from dev/dashboard.py, conventional, and every query valid
against the metrics the service really exports, down to running them on a real Prometheus."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from consumer.health import HealthServer
from dev import dashboard
from dev import promtool as tools

from .conftest import ROOT
from .promql import RATE_INTERVAL_SECONDS, grafana_to_promql, matrix_ranges, metric_names
from .sample import exercise_every_metric

DASHBOARD = ROOT / "dashboards" / "clevertap-consumer.json"
PROVISIONING = ROOT / "deploy" / "compose" / "grafana" / "provisioning"  # what compose mounts
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _load() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in doc["panels"] if p["type"] != "row"]


def _queries(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expr) for every PromQL query: panel targets and annotations."""
    out = [
        (f"panel {p['title']!r} target {t['refId']}", t["expr"]) for p in _panels(doc) for t in p["targets"]
    ]
    out += [(f"annotation {a['name']!r}", a["expr"]) for a in doc["annotations"]["list"]]
    return out


def test_committed_json_is_what_the_generator_writes() -> None:
    assert DASHBOARD.read_text() == dashboard.render(), "run: python dev/dashboard.py"


def test_dashboard_follows_the_conventions() -> None:
    doc = _load()
    assert doc["uid"] == "clevertap-consumer"
    assert "id" not in doc, "a numeric id ties the JSON to one Grafana database"
    assert doc["title"]
    assert doc["tags"]
    assert doc["schemaVersion"] >= 36
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["datasource"] == DATASOURCE

    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in _panels(doc):
        title = panel["title"]
        assert panel["datasource"] == DATASOURCE, title
        assert panel["targets"], title
        assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), title
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{title}: no unit"
        assert panel["description"].strip(), f"{title}: no description"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, title
        for target in panel["targets"]:
            assert 'job=~"$job"' in target["expr"], f"{title}: query ignores the job variable"
            assert 'instance=~"$instance"' in target["expr"], f"{title}: query ignores the instance variable"
    for annotation in doc["annotations"]["list"]:
        assert annotation["datasource"] == DATASOURCE


def test_every_range_in_a_panel_is_the_rate_interval() -> None:
    for where, expr in _queries(_load()):
        if where.startswith("annotation"):
            continue  # annotations are evaluated per step, with a fixed window
        for seconds in matrix_ranges(grafana_to_promql(expr)):
            assert seconds == RATE_INTERVAL_SECONDS, f"{where}: use [$__rate_interval], not a fixed range"


def test_every_query_parses_and_only_uses_exported_series(exported_names: set[str]) -> None:
    # `exported_names` are sample names from a real scrape, so `x_bucket`, `x_sum`, `x_count`,
    # `x_total` and `x_info` are matched exactly as Prometheus stores them.
    doc = _load()
    for where, expr in _queries(doc):
        used = metric_names(grafana_to_promql(expr))  # raises on a syntax error
        assert used, where
        unknown = {n for n in used if n not in exported_names and n != "up"}
        assert not unknown, f"{where} uses {sorted(unknown)}, which /metrics does not export"
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            selector = variable["definition"].removeprefix("label_values(").rsplit(",", 1)[0]
            assert metric_names(grafana_to_promql(selector)) <= exported_names, variable["name"]


def test_promtool_parses_every_query(promtool: Path, tmp_path: Path) -> None:
    """Prometheus's own parser and type checker, through a throwaway recording-rules file."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(expr, "5m")}
        for i, (_, expr) in enumerate(_queries(_load()))
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_provisioning_files_point_grafana_at_prometheus_and_the_dashboard_folder() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    (ds,) = datasources["datasources"]
    assert datasources["apiVersion"] == 1
    assert ds["type"] == "prometheus"
    assert ds["url"].startswith("http")
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "clevertap-consumer.yaml").read_text())
    (provider,) = providers["providers"]
    assert providers["apiVersion"] == 1
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")


# -- the queries on a real Prometheus ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def prometheus(server: HealthServer, tmp_path: Path) -> Iterator[httpx.Client]:
    """Debian's Prometheus on loopback, scraping the health server every second."""
    binary = tools.ensure("prometheus")
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "clevertap-consumer",
                        "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}],
                    }
                ],
            }
        )
    )
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            str(binary),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                if httpx.get(f"{base}/-/ready", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=10.0) as client:
            yield client
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _query(prometheus: httpx.Client, expr: str) -> list[dict[str, Any]]:
    response = prometheus.get("/api/v1/query", params={"query": expr})
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_every_dashboard_query_returns_series_from_a_real_scrape(prometheus: httpx.Client) -> None:
    # Keep the service "busy" so counters move between scrapes and rates are above zero.
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            exercise_every_metric()
            stop.wait(0.1)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not _query(prometheus, 'count_over_time(up{job="clevertap-consumer"}[1m]) >= 3'):
            assert time.monotonic() < deadline, "prometheus is not scraping the health server"
            time.sleep(0.5)

        empty = []
        for where, expr in _queries(_load()):
            if not _query(prometheus, grafana_to_promql(expr, "30s")):
                empty.append(where)
        assert not empty, f"queries with no data although every metric has a value: {empty}"

        (throughput,) = _query(prometheus, grafana_to_promql(_panel_expr("Throughput", "A"), "30s"))
        assert float(throughput["value"][1]) > 0
        (p99,) = _query(prometheus, grafana_to_promql(_panel_expr("End-to-end latency", "B"), "30s"))
        assert 0 < float(p99["value"][1]) <= 0.5  # every observation was 0.4 s (NaN fails too)
    finally:
        stop.set()
        worker.join()


def _panel_expr(title_prefix: str, ref: str) -> str:
    for panel in _panels(_load()):
        if panel["title"].startswith(title_prefix):
            return str(next(t["expr"] for t in panel["targets"] if t["refId"] == ref))
    raise AssertionError(f"no panel {title_prefix!r}")

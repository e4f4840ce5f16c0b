"""What the rendered chart does, checked on the parsed manifests (helm-unittest style, in pytest).

The strongest checks feed the rendered configuration to the service's own code: the env vars go
through `consumer.settings.load_settings`, the ConfigMap through `parse_destinations`, and the
Secret volume is materialised on disk so each destination's `passcodeFile` resolves to the
passcode that was given in values.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from helm_python import HelmRenderError
from helm_python.errors import HelmValuesError

from consumer.destinations import DestinationsFile, parse_destinations
from consumer.settings import Settings, load_settings

from .helpers import CI_VALUES, NAMESPACE, RELEASE, Manifest, Rendered, merge, render, scenario

SCENARIOS = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]
SECRETS_DIR = "/etc/clevertap-consumer/secrets"
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/component",
    "helm.sh/chart",
)


# --------------------------------------------------------------------------- helpers


def _secret_values(values: dict[str, Any]) -> list[str]:
    """Every credential given as a plain value in a values tree."""
    found = [d["passcode"] for d in values.get("destinations", {}).values() if d.get("passcode")]
    if values.get("kafka", {}).get("sasl", {}).get("password"):
        found.append(values["kafka"]["sasl"]["password"])
    if values.get("schemaRegistry", {}).get("basicAuthUserInfo"):
        found.append(values["schemaRegistry"]["basicAuthUserInfo"])
    return found


def _destinations(rendered: Rendered) -> DestinationsFile:
    configmaps = [c for c in rendered.all("ConfigMap") if "destinations.json" in c.get("data", {})]
    assert len(configmaps) == 1
    return parse_destinations(json.loads(configmaps[0]["data"]["destinations.json"]), "rendered ConfigMap")


def _volume(rendered: Rendered, name: str) -> dict[str, Any]:
    volumes = rendered.workload()["spec"]["template"]["spec"]["volumes"]
    found = [v for v in volumes if v["name"] == name]
    assert len(found) == 1, [v["name"] for v in volumes]
    volume = found[0]
    assert isinstance(volume, dict)
    return volume


def _mount(rendered: Rendered, name: str) -> dict[str, Any]:
    found = [m for m in rendered.container()["volumeMounts"] if m["name"] == name]
    assert len(found) == 1
    mount = found[0]
    assert isinstance(mount, dict)
    return mount


def _materialise_secrets(rendered: Rendered, root: Path, external: dict[str, dict[str, str]]) -> Path:
    """Write the projected secrets volume to `root` as the kubelet would, from the chart's Secret
    or from `external` ({secret name: {key: value}}) for existingSecret references."""
    generated: dict[str, dict[str, str]] = {}
    for secret in rendered.all("Secret"):
        generated[secret["metadata"]["name"]] = {
            k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()
        }
    available = {**external, **generated}
    for source in _volume(rendered, "secrets")["projected"]["sources"]:
        ref = source["secret"]
        assert ref["name"] in available, f"volume references Secret {ref['name']!r}, which nobody provides"
        for item in ref["items"]:
            assert item["key"] in available[ref["name"]], f"Secret {ref['name']} has no key {item['key']!r}"
            path = root / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(available[ref["name"]][item["key"]])
    return root


def _settings_from(rendered: Rendered, monkeypatch: pytest.MonkeyPatch, secrets_dir: Path | None) -> Settings:
    """Load the service's settings from exactly the container's literal env (plus a secrets dir)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, entry in rendered.env().items():
        if "value" in entry:
            value = entry["value"]
            if name.endswith("_LOCATION"):  # a mounted TLS file: the service checks it exists
                stand_in = Path.cwd() / "mounted" / value.lstrip("/")
                stand_in.parent.mkdir(parents=True, exist_ok=True)
                stand_in.touch()
                value = str(stand_in)
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("SECRETS_DIRS", str(secrets_dir) if secrets_dir else "/nonexistent")
    return load_settings()


def _checksums(values: dict[str, Any]) -> dict[str, str]:
    annotations = render(values).workload()["spec"]["template"]["metadata"]["annotations"]
    return {k: v for k, v in annotations.items() if k.startswith("checksum/")}


def _render_error(values: dict[str, Any]) -> str:
    with pytest.raises(HelmRenderError) as err:
        render(values)
    return str(err.value)


@pytest.fixture(autouse=True)
def _no_stray_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # Settings reads .env from the working directory


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize("name", SCENARIOS)
def test_no_credential_outside_secrets(name: str) -> None:
    values = scenario(name)
    secrets = _secret_values(values)
    rendered = render(values)
    encoded = [base64.b64encode(s.encode()).decode() for s in secrets]
    for template, docs in rendered.by_template.items():
        for doc in docs:
            if doc["kind"] == "Secret":
                continue
            text = json.dumps(doc)
            for s in secrets + encoded:
                assert s not in text, f"{template}: {doc['kind']} contains a credential"
    for s in secrets:
        assert s not in rendered.notes
    # and the ones given as values do reach the Secret (so the scan above looked for real values)
    stored = {v for sec in rendered.all("Secret") for v in sec.get("data", {}).values()}
    assert set(encoded) <= stored


@pytest.mark.parametrize("name", SCENARIOS)
def test_configmaps_hold_no_passcodes(name: str) -> None:
    rendered = render(scenario(name))
    destinations = _destinations(rendered)
    for d in destinations.destinations:
        assert d.passcode is None, f"destination {d.id} carries its passcode in the ConfigMap"
        assert (d.passcode_file is None) != (d.passcode_env is None)
    for cm in rendered.all("ConfigMap"):
        for key, text in cm.get("data", {}).items():
            assert '"passcode"' not in text, f"{cm['metadata']['name']}/{key}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_passcode_file_resolves_to_the_given_passcode(name: str, tmp_path: Path) -> None:
    values = scenario(name)
    rendered = render(values)
    external = {
        "clevertap-passcodes": {"web": "ext-web", "mobile-app-passcode": "ext-app"},
        "clevertap-consumer-kafka-user": {"password": "ext-sasl"},
        "schema-registry-credentials": {"user-info": "u:p"},
        "confluent-cloud-oauth": {"client-secret": "ext-oidc-secret"},
    }
    assert _mount(rendered, "secrets")["mountPath"] == SECRETS_DIR
    assert _mount(rendered, "secrets")["readOnly"] is True
    root = _materialise_secrets(rendered, tmp_path / "secrets", external)
    env = rendered.env()
    for d in _destinations(rendered).destinations:
        if d.passcode_env is not None:
            # the variable must exist in the pod: here from extraEnvVars (secretKeyRef)
            assert d.passcode_env in env
            assert "secretKeyRef" in env[d.passcode_env]["valueFrom"]
            continue
        assert d.passcode_file is not None
        relative = d.passcode_file.relative_to(SECRETS_DIR)
        moved = d.model_copy(update={"passcode_file": root / relative})
        got = moved.resolve_passcode().get_secret_value()
        given = values["destinations"][d.id].get("passcode")
        if values.get("clevertap", {}).get("existingSecret"):
            key = values["destinations"][d.id].get("passcodeKey", d.id)
            given = external[values["clevertap"]["existingSecret"]][key]
        assert got == given


@pytest.mark.parametrize("name", SCENARIOS)
def test_service_loads_the_rendered_settings(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = scenario(name)
    rendered = render(values)
    external = {
        "clevertap-passcodes": {"web": "x", "mobile-app-passcode": "y"},
        "clevertap-consumer-kafka-user": {"password": "ext-sasl"},
        "schema-registry-credentials": {"user-info": "ext-user:ext-pass"},
        "confluent-cloud-oauth": {"client-secret": "ext-oidc-secret"},
    }
    secrets = _materialise_secrets(rendered, tmp_path / "secrets", external)
    settings = _settings_from(rendered, monkeypatch, secrets)
    assert settings.kafka_bootstrap_servers == values["kafka"]["bootstrapServers"]
    assert settings.kafka_topics == tuple(values["kafka"]["topics"])
    assert settings.kafka_group_id == values["kafka"].get("groupId", "clevertap-consumer")
    sasl = values["kafka"].get("sasl", {})
    if sasl.get("existingSecret"):
        assert settings.kafka_sasl_password is not None
        assert settings.kafka_sasl_password.get_secret_value() == "ext-sasl"
    elif sasl.get("password"):
        assert settings.kafka_sasl_password is not None
        assert settings.kafka_sasl_password.get_secret_value() == sasl["password"]
    else:
        assert settings.kafka_sasl_password is None
    registry = values.get("schemaRegistry", {})
    info = settings.schema_registry_basic_auth_user_info
    if registry.get("existingSecret"):
        assert info is not None
        assert info.get_secret_value() == "ext-user:ext-pass"
    elif registry.get("basicAuthUserInfo"):
        assert info is not None
        assert info.get_secret_value() == registry["basicAuthUserInfo"]
    else:
        assert info is None
    if "extraConfig" in values["kafka"]:
        assert settings.kafka_extra_config == {k: str(v) for k, v in values["kafka"]["extraConfig"].items()}


def test_every_env_var_is_a_service_setting() -> None:
    known = {name.upper() for name in Settings.model_fields} | {"SECRETS_DIRS"}
    for name in SCENARIOS:
        values = scenario(name)
        extra = {e["name"] for e in values.get("extraEnvVars", [])}
        unknown = set(render(values).env()) - known - extra
        assert unknown == set(), f"{name}: env vars the service does not read: {unknown}"


def test_chart_defaults_are_the_service_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """A default install behaves like the service's own defaults; only deliberate choices differ."""
    deliberate = {"log_format": "json"}  # JSON logs in a cluster, whatever `auto` would pick
    required = {"kafka_bootstrap_servers", "kafka_topics", "destinations_file"}
    rendered = render(scenario("default"))
    from_chart = _settings_from(rendered, monkeypatch, None)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name in required:
        monkeypatch.setenv(name.upper(), rendered.env()[name.upper()]["value"])
    service_defaults = load_settings()
    rendered_names = {n.lower() for n in rendered.env()}
    compared = 0
    for name in Settings.model_fields:
        if name in required or name not in rendered_names:
            continue
        if name in deliberate:
            assert getattr(from_chart, name) == deliberate[name]
            continue
        assert getattr(from_chart, name) == getattr(service_defaults, name), name
        compared += 1
    assert compared >= 15


def test_existing_secret_suppresses_the_generated_secret() -> None:
    rendered = render(scenario("existing-secret"))
    assert rendered.all("Secret") == []
    annotations = rendered.workload()["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" not in annotations
    sources = {
        s["secret"]["name"]: s["secret"]["items"]
        for s in _volume(rendered, "secrets")["projected"]["sources"]
    }
    assert sources["clevertap-consumer-kafka-user"] == [{"key": "password", "path": "kafka_sasl_password"}]
    assert sources["schema-registry-credentials"] == [
        {"key": "user-info", "path": "schema_registry_basic_auth_user_info"}
    ]
    assert sorted(sources["clevertap-passcodes"], key=lambda i: i["path"]) == [
        {"key": "mobile-app-passcode", "path": "clevertap-passcodes/app"},
        {"key": "web", "path": "clevertap-passcodes/web"},
    ]
    assert rendered.env()["PARTNER_PASSCODE"]["valueFrom"]["secretKeyRef"]["name"] == "partner-clevertap"


def test_existing_secret_wins_per_credential() -> None:
    """Only the credentials without an existingSecret land in the generated Secret."""
    values = merge(
        scenario("sasl"),
        {"kafka": {"sasl": {"existingSecret": "kafka-user"}}, "clevertap": {"existingSecret": "passcodes"}},
    )
    for d in values["destinations"].values():
        del d["passcode"]
    rendered = render(values)
    secret = rendered.one("Secret")
    assert set(secret["data"]) == {"schema-registry-basic-auth-user-info"}
    names = {s["secret"]["name"] for s in _volume(rendered, "secrets")["projected"]["sources"]}
    assert names == {"kafka-user", "passcodes", secret["metadata"]["name"]}


def test_secret_volume_is_absent_without_credentials() -> None:
    values = scenario("existing-secret")
    values["kafka"] = {"bootstrapServers": "k:9092", "topics": ["events"]}
    values["schemaRegistry"] = {}
    values["clevertap"] = {}
    values["destinations"] = {"partner": values["destinations"]["partner"]}
    rendered = render(values)
    volume_names = [v["name"] for v in rendered.workload()["spec"]["template"]["spec"]["volumes"]]
    assert "secrets" not in volume_names
    assert rendered.all("Secret") == []


def test_config_changes_roll_the_pods() -> None:
    base = scenario("sasl")
    before = _checksums(base)
    assert set(before) == {"checksum/config", "checksum/secret"}

    region = merge(base, {"destinations": {"web": {"region": "sg1"}}})
    after = _checksums(region)
    assert after["checksum/config"] != before["checksum/config"]
    assert after["checksum/secret"] == before["checksum/secret"]

    passcode = merge(base, {"destinations": {"web": {"passcode": "rotated"}}})
    after = _checksums(passcode)
    assert after["checksum/secret"] != before["checksum/secret"]
    assert after["checksum/config"] == before["checksum/config"]

    unrelated = merge(base, {"replicaCount": 5, "podAnnotations": {"team": "data"}})
    assert _checksums(unrelated) == before


def test_destinations_update_reload_changes_the_configmap_without_rolling_the_pods() -> None:
    live = merge(scenario("sasl"), {"destinationsUpdate": "reload"})
    before = _checksums(live)
    assert set(before) == {"checksum/secret"}, "Kafka credentials still roll the pods"
    region = merge(live, {"destinations": {"web": {"region": "sg1"}}})
    assert _checksums(region) == before
    rendered = render(region)
    [configmap] = [c for c in rendered.all("ConfigMap") if "destinations.json" in c.get("data", {})]
    assert '"sg1"' in configmap["data"]["destinations.json"]
    # Mounted as a folder (no subPath), so the kubelet's `..data` swap reaches the pod.
    [mount] = [m for m in rendered.container()["volumeMounts"] if m["name"] == "destinations"]
    assert "subPath" not in mount


# --------------------------------------------------------------------------- probes and shutdown


@pytest.mark.parametrize("name", SCENARIOS)
def test_probes_use_the_health_endpoints_on_the_metrics_port(name: str) -> None:
    rendered = render(scenario(name))
    container = rendered.container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": int(rendered.env()["METRICS_PORT"]["value"])}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    if "startupProbe" in container:
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    service = next(s for s in rendered.all("Service") if s["metadata"]["name"].endswith("-metrics"))
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}
    ]


def test_startup_probe_is_opt_in() -> None:
    assert "startupProbe" not in render(scenario("default")).container()
    assert "startupProbe" in render(scenario("hpa")).container()


def test_metrics_port_follows_the_value() -> None:
    rendered = render(merge(scenario("default"), {"metrics": {"port": 9200}}))
    assert rendered.env()["METRICS_PORT"]["value"] == "9200"
    assert rendered.container()["ports"][0]["containerPort"] == 9200


@pytest.mark.parametrize("name", SCENARIOS)
def test_grace_period_outlasts_the_drain(name: str) -> None:
    rendered = render(scenario(name))
    grace = rendered.workload()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    drain = float(rendered.env()["DRAIN_TIMEOUT_SECONDS"]["value"])
    assert grace >= drain + 10


@pytest.mark.parametrize(
    ("grace", "drain", "ok"),
    [(45, 20, True), (30, 20, True), (29, 20, False), (25, 20, False), (45, 40, False), (60, 40, True)],
)
def test_grace_period_below_the_drain_is_refused(grace: int, drain: int, ok: bool) -> None:
    values = merge(
        scenario("default"),
        {"terminationGracePeriodSeconds": grace, "flowControl": {"drainTimeoutSeconds": drain}},
    )
    if ok:
        rendered = render(values)
        assert rendered.workload()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == grace
        assert rendered.env()["DRAIN_TIMEOUT_SECONDS"]["value"] == str(drain)
    else:
        assert "terminationGracePeriodSeconds" in _render_error(values)


@pytest.mark.parametrize(
    ("workers", "max_in_flight", "ok"), [(1, 15, True), (3, 15, True), (4, 4, True), (5, 4, False)]
)
def test_workers_share_the_pods_request_cap(workers: int, max_in_flight: int, ok: bool) -> None:
    values = merge(scenario("default"), {"workers": workers, "clevertap": {"maxInFlight": max_in_flight}})
    if ok:
        env = render(values).env()
        assert env["WORKERS"]["value"] == str(workers)
        assert env["CLEVERTAP_MAX_IN_FLIGHT"]["value"] == str(max_in_flight)
    else:
        error = _render_error(values)
        assert "workers (5)" in error
        assert "clevertap.maxInFlight (4)" in error


# --------------------------------------------------------------------------- security


@pytest.mark.parametrize("name", SCENARIOS)
def test_restricted_security_context(name: str) -> None:
    rendered = render(scenario(name))
    pod = rendered.workload()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    sc = rendered.container()["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc.get("privileged", False) is False
    assert _mount(rendered, "tmp")["mountPath"] == "/tmp"
    assert "emptyDir" in _volume(rendered, "tmp")
    sa = rendered.one("ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == sa["metadata"]["name"]


def test_resources_are_set_without_a_cpu_limit() -> None:
    resources = render(scenario("default")).container()["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert "memory" in resources["limits"]
    assert "cpu" not in resources["limits"]  # throttling would inflate delivery latency


# --------------------------------------------------------------------------- labels and selectors


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("name", SCENARIOS)
def test_labels_and_selectors_are_consistent(name: str) -> None:
    rendered = render(scenario(name))
    for m in rendered:
        labels = m["metadata"].get("labels", {})
        for key in STANDARD_LABELS:
            assert key in labels, f"{m['kind']}/{m['metadata']['name']} lacks {key}"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        if m["kind"] not in ("ServiceMonitor", "PrometheusRule", "ConfigMap"):
            assert m["metadata"]["namespace"] == NAMESPACE
    workload = rendered.workload()
    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
    selector = workload["spec"]["selector"]["matchLabels"]
    assert _matches(selector, pod_labels)
    assert set(selector) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
    for service in rendered.all("Service"):
        assert _matches(service["spec"]["selector"], pod_labels)
    if rendered.all("PodDisruptionBudget"):
        assert rendered.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    for spread in workload["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
        assert spread["labelSelector"]["matchLabels"] == selector
    for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        for scaler in rendered.all(kind):
            assert scaler["spec"]["scaleTargetRef"] == {
                "apiVersion": "apps/v1",
                "kind": workload["kind"],
                "name": workload["metadata"]["name"],
            }
    for monitor in rendered.all("ServiceMonitor"):
        chosen = [
            s
            for s in rendered.all("Service")
            if _matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert [s["metadata"]["name"] for s in chosen] == [f"{RELEASE}-clevertap-consumer-metrics"]
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_default_topology_spread_is_soft_and_per_revision() -> None:
    spread = render(scenario("default")).workload()["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert [s["topologyKey"] for s in spread] == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    assert {s["whenUnsatisfiable"] for s in spread} == {"ScheduleAnyway"}
    assert all(s["matchLabelKeys"] == ["pod-template-hash"] for s in spread)
    custom = [
        {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}
    ]
    rendered = render(merge(scenario("default"), {"topologySpreadConstraints": custom}))
    assert rendered.workload()["spec"]["template"]["spec"]["topologySpreadConstraints"] == custom


# --------------------------------------------------------------------------- scaling


def test_hpa_and_keda_are_mutually_exclusive() -> None:
    values = merge(scenario("keda"), {"autoscaling": {"hpa": {"enabled": True}}})
    assert "mutually exclusive" in _render_error(values)


@pytest.mark.parametrize(("name", "scaler"), [("keda", "ScaledObject"), ("hpa", "HorizontalPodAutoscaler")])
def test_replicas_are_left_to_the_autoscaler(name: str, scaler: str) -> None:
    rendered = render(scenario(name))
    assert "replicas" not in rendered.workload()["spec"]
    assert len(rendered.all(scaler)) == 1
    other = {"ScaledObject": "HorizontalPodAutoscaler", "HorizontalPodAutoscaler": "ScaledObject"}[scaler]
    assert rendered.all(other) == []


def test_replicas_are_set_without_autoscaling() -> None:
    rendered = render(merge(scenario("default"), {"replicaCount": 4}))
    assert rendered.workload()["spec"]["replicas"] == 4
    assert rendered.all("HorizontalPodAutoscaler") == rendered.all("ScaledObject") == []


@pytest.mark.parametrize("name", ["keda", "sasl"])
def test_keda_watches_the_consumers_own_group(name: str) -> None:
    values = scenario(name)
    rendered = render(values)
    trigger = rendered.one("ScaledObject")["spec"]["triggers"][0]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    env = rendered.env()
    assert (
        meta["consumerGroup"]
        == env["KAFKA_GROUP_ID"]["value"]
        == values["kafka"].get("groupId", "clevertap-consumer")
    )
    assert meta["bootstrapServers"] == env["KAFKA_BOOTSTRAP_SERVERS"]["value"]
    assert all(isinstance(v, str) for v in meta.values())  # KEDA metadata is map[string]string
    topics = env["KAFKA_TOPICS"]["value"].split(",")
    if len(topics) == 1:
        assert meta["topic"] == topics[0]
    else:
        assert "topic" not in meta  # all topics the group consumes


def test_keda_group_follows_a_changed_group_id() -> None:
    rendered = render(merge(scenario("keda"), {"kafka": {"groupId": "ct-eu"}}))
    assert rendered.one("ScaledObject")["spec"]["triggers"][0]["metadata"]["consumerGroup"] == "ct-eu"
    assert rendered.env()["KAFKA_GROUP_ID"]["value"] == "ct-eu"


def test_keda_authenticates_with_the_pods_credentials() -> None:
    rendered = render(scenario("sasl"))
    scaled = rendered.one("ScaledObject")
    auth = rendered.one("TriggerAuthentication")
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    assert trigger["metadata"]["sasl"] == "scram_sha512"
    assert trigger["metadata"]["tls"] == "enable"
    refs = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
    projected = {
        item["path"]: (s["secret"]["name"], item["key"])
        for s in _volume(rendered, "secrets")["projected"]["sources"]
        for item in s["secret"]["items"]
    }
    assert (refs["password"]["name"], refs["password"]["key"]) == projected["kafka_sasl_password"]
    tls = _volume(rendered, "kafka-tls")["secret"]
    assert (refs["ca"]["name"], refs["ca"]["key"]) == (tls["secretName"], tls["items"][0]["key"])
    assert auth["spec"]["env"] == [
        {
            "parameter": "username",
            "name": "KAFKA_SASL_USERNAME",
            "containerName": rendered.container()["name"],
        }
    ]
    assert rendered.env()["KAFKA_SSL_CA_LOCATION"]["value"] == "/etc/clevertap-consumer/kafka-tls/ca.crt"


def test_keda_with_an_existing_kafka_secret() -> None:
    rendered = render(merge(scenario("existing-secret"), {"autoscaling": {"keda": {"enabled": True}}}))
    refs = rendered.one("TriggerAuthentication")["spec"]["secretTargetRef"]
    assert refs == [{"parameter": "password", "name": "clevertap-consumer-kafka-user", "key": "password"}]
    assert rendered.one("ScaledObject")["spec"]["triggers"][0]["metadata"]["sasl"] == "scram_sha512"


def test_keda_without_kafka_auth_needs_no_trigger_authentication() -> None:
    rendered = render(scenario("keda"))
    assert rendered.all("TriggerAuthentication") == []
    assert "authenticationRef" not in rendered.one("ScaledObject")["spec"]["triggers"][0]


def test_hpa_targets() -> None:
    hpa = render(scenario("hpa")).one("HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    assert hpa["spec"]["metrics"][0]["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 75},
    }
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600


# --------------------------------------------------------------------------- static membership


def test_static_membership_uses_the_pod_name_on_a_statefulset() -> None:
    rendered = render(scenario("static-membership"))
    workload = rendered.workload()
    assert workload["kind"] == "StatefulSet"
    assert rendered.env()["KAFKA_GROUP_INSTANCE_ID"] == {
        "name": "KAFKA_GROUP_INSTANCE_ID",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
    }
    headless = [s for s in rendered.all("Service") if s["spec"].get("clusterIP") == "None"]
    assert [s["metadata"]["name"] for s in headless] == [workload["spec"]["serviceName"]]
    assert workload["spec"]["podManagementPolicy"] == "Parallel"
    assert "matchLabelKeys" not in workload["spec"]["template"]["spec"]["topologySpreadConstraints"][0]


def test_static_membership_is_off_by_default() -> None:
    rendered = render(scenario("default"))
    assert rendered.workload()["kind"] == "Deployment"
    assert "KAFKA_GROUP_INSTANCE_ID" not in rendered.env()


def test_static_membership_on_a_deployment_is_refused() -> None:
    values = merge(scenario("default"), {"kafka": {"staticMembership": {"enabled": True}}})
    assert "StatefulSet" in _render_error(values)


# --------------------------------------------------------------------------- availability


def test_pdb_defaults_to_one_unavailable_and_allows_evicting_unready_pods() -> None:
    pdb = render(scenario("default")).one("PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert "minAvailable" not in pdb
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_pdb_min_available() -> None:
    pdb = render(scenario("static-membership")).one("PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 2
    assert "maxUnavailable" not in pdb
    percent = render(merge(scenario("default"), {"pdb": {"maxUnavailable": "50%"}}))
    assert percent.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == "50%"
    both = merge(scenario("default"), {"pdb": {"minAvailable": 1, "maxUnavailable": 1}})
    assert "not both" in _render_error(both)
    assert render(merge(scenario("default"), {"pdb": {"create": False}})).all("PodDisruptionBudget") == []


# --------------------------------------------------------------------------- monitoring


def test_monitoring_objects_are_off_by_default() -> None:
    rendered = render(scenario("default"))
    assert rendered.all("ServiceMonitor") == rendered.all("PrometheusRule") == []
    assert [c["metadata"]["name"] for c in rendered.all("ConfigMap")] == [
        f"{RELEASE}-clevertap-consumer-destinations"
    ]
    assert rendered.all("NetworkPolicy") == []


def test_service_monitor_scrapes_the_metrics_port() -> None:
    rendered = render(scenario("monitoring"))
    monitor = rendered.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    endpoint = monitor["spec"]["endpoints"][0]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"], endpoint["scrapeTimeout"]) == (
        "metrics",
        "/metrics",
        "15s",
        "10s",
    )
    assert endpoint["metricRelabelings"][0]["action"] == "drop"


def test_prometheus_rule_has_the_chart_rules_and_extras() -> None:
    rendered = render(scenario("monitoring"))
    groups = rendered.one("PrometheusRule")["spec"]["groups"]
    alerts = [r["alert"] for g in groups for r in g["rules"]]
    assert {
        "ClevertapConsumerLagGrowing",
        "ClevertapConsumerDeadLetterRateHigh",
        "ClevertapConsumerDown",
    } <= set(alerts)
    # Prometheus' own template syntax reaches Prometheus untouched by Helm
    lag = next(r for g in groups for r in g["rules"] if r["alert"] == "ClevertapConsumerLagGrowing")
    assert "{{ $labels.topic }}" in lag["annotations"]["summary"]
    only_extra = merge(scenario("monitoring"), {"metrics": {"prometheusRule": {"defaultRules": False}}})
    groups = render(only_extra).one("PrometheusRule")["spec"]["groups"]
    assert [r["alert"] for g in groups for r in g["rules"]] == ["ClevertapConsumerDown"]
    empty = merge(only_extra, {"metrics": {"prometheusRule": {"rules": []}}})
    assert "defaultRules" in _render_error(empty)


def test_dashboard_configmap_for_the_grafana_sidecar() -> None:
    from .helpers import CHART

    rendered = render(scenario("monitoring"))
    dashboard = next(c for c in rendered.all("ConfigMap") if c["metadata"]["name"].endswith("-dashboard"))
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert (
        dashboard["metadata"]["annotations"]["k8s-sidecar-target-directory"]
        == "/tmp/dashboards/clevertap-consumer"
    )
    body = dashboard["data"]["clevertap-consumer.json"]
    assert json.loads(body) == json.loads((CHART / "dashboards" / "clevertap-consumer.json").read_text())
    relabelled = render(
        merge(
            scenario("monitoring"),
            {"metrics": {"grafanaDashboard": {"labels": {"grafana_dashboard": "provision"}}}},
        )
    )
    dashboard = next(c for c in relabelled.all("ConfigMap") if c["metadata"]["name"].endswith("-dashboard"))
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "provision"


def test_network_policy_opens_only_the_metrics_port() -> None:
    policy = render(scenario("monitoring")).one("NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert len(policy["ingress"]) == 1
    assert policy["ingress"][0]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert policy["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }


# --------------------------------------------------------------------------- image and misc


def test_image_reference() -> None:
    from .helpers import CHART

    app_version = next(
        line.split(":", 1)[1].strip().strip('"')
        for line in (CHART / "Chart.yaml").read_text().splitlines()
        if line.startswith("appVersion")
    )
    assert (
        render(scenario("default")).container()["image"]
        == f"ghcr.io/clevertap-consumer/clevertap-consumer:{app_version}"
    )
    assert render(scenario("hpa")).container()["image"].endswith("@sha256:" + "0123456789abcdef" * 4)
    tagged = render(
        merge(scenario("default"), {"image": {"registry": "", "repository": "me/ct", "tag": "1.2.3"}})
    )
    assert tagged.container()["image"] == "me/ct:1.2.3"
    assert tagged.container()["args"] == ["run"]


def test_notes_name_the_workload_and_destinations() -> None:
    notes = render(scenario("sasl")).notes
    assert f"{RELEASE}-clevertap-consumer" in notes
    assert "app, web" in notes
    assert "KEDA" in notes


def _all_manifests(name: str) -> list[Manifest]:
    return list(render(scenario(name)))


def test_scenarios_render_distinct_object_sets() -> None:
    """Each ci/ scenario exercises something the default does not."""
    default = sorted(m["kind"] for m in _all_manifests("default"))
    for name in SCENARIOS:
        if name != "default":
            rendered = _all_manifests(name)
            kinds = sorted(m["kind"] for m in rendered)
            assert kinds != default or json.dumps(rendered) != json.dumps(_all_manifests("default")), name


def test_regulation_topic_turns_user_deletion_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "KAFKA_REGULATION_TOPIC" not in render(scenario("default")).env()
    values = merge(scenario("default"), {"kafka": {"regulationTopic": "regulations"}})
    settings = _settings_from(render(values), monkeypatch, None)
    assert settings.kafka_regulation_topic == "regulations"
    with pytest.raises(HelmValuesError, match="regulationTopic"):
        render(merge(scenario("default"), {"kafka": {"regulationTopic": "a b"}}))


def test_per_account_budgets_reach_the_service_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """0 (the default) leaves the service's own default, half of the overall bound; a value is
    passed through and validated by the service like any other setting."""
    default = render(scenario("default")).env()
    assert "MAX_IN_FLIGHT_RECORDS_PER_ACCOUNT" not in default
    assert "MAX_IN_FLIGHT_BYTES_PER_ACCOUNT" not in default
    values = merge(
        scenario("default"),
        {
            "flowControl": {
                "maxInFlightRecordsPerAccount": 5000,
                "maxInFlightBytesPerAccount": 8_388_608,
                "maxTrackedOffsetsPerPartition": 50_000,
            }
        },
    )
    settings = _settings_from(render(values), monkeypatch, None)
    assert settings.max_in_flight_records_per_account == 5000
    assert settings.max_in_flight_bytes_per_account == 8_388_608
    assert settings.max_tracked_offsets_per_partition == 50_000

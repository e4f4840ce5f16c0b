"""Each Kafka login mode the chart offers (ci/ examples for Confluent Cloud, MSK and Strimzi)
renders into settings the service accepts and librdkafka builds a client from; secrets arrive as
mounted files; bad combinations fail the render naming the values."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from helm_python import HelmRenderError

from consumer.settings import Settings, kafka_client_config, load_settings

from ..support.pki import make_pki
from .helpers import Rendered, merge, render, scenario

POD_ROOT = "/etc/clevertap-consumer"


def _materialise(rendered: Rendered, root: Path, files: dict[tuple[str, str], Path]) -> None:
    """Lay the pod's Secret volumes out under `root`: each (secretName, key) from `files`."""
    spec = rendered.workload()["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in rendered.container()["volumeMounts"]}
    for volume in spec["volumes"]:
        sources = []
        if "secret" in volume:
            sources = [volume["secret"] | {"name": volume["secret"]["secretName"]}]
        elif "projected" in volume:
            sources = [s["secret"] for s in volume["projected"]["sources"]]
        for source in sources:
            for item in source["items"]:
                target = root / Path(mounts[volume["name"]]).relative_to(POD_ROOT) / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(files[(source["name"], item["key"])], target)


def _settings(rendered: Rendered, monkeypatch: pytest.MonkeyPatch, root: Path) -> Settings:
    """The service's settings from the container's env, pod paths moved under `root`."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, entry in rendered.env().items():
        if "value" in entry:
            monkeypatch.setenv(name, entry["value"].replace(POD_ROOT, str(root)))
    monkeypatch.chdir(root)
    return load_settings()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _secret_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_confluent_cloud_oidc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rendered = render(scenario("confluent-cloud"))
    env = rendered.env()
    assert "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET" not in env  # a file, never a variable
    _materialise(
        rendered,
        tmp_path,
        {
            ("confluent-cloud-oauth", "client-secret"): _secret_file(tmp_path, "cs", "oidc-client-secret"),
            ("schema-registry-credentials", "user-info"): _secret_file(tmp_path, "ui", "KEY:registry-secret"),
            ("clevertap-passcodes", "web"): _secret_file(tmp_path, "pc", "ci-passcode-web"),
        },
    )
    conf = kafka_client_config(_settings(rendered, monkeypatch, tmp_path))
    assert conf["sasl.mechanism"] == "OAUTHBEARER"
    assert conf["sasl.oauthbearer.method"] == "oidc"
    assert conf["sasl.oauthbearer.client.secret"] == "oidc-client-secret"
    assert conf["sasl.oauthbearer.extensions"] == "logicalCluster=lkc-00000,identityPoolId=pool-00000"
    Consumer({**conf, "group.id": "chart-auth"}).close()


def test_msk_iam(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rendered = render(scenario("msk-iam"))
    assert rendered.all("Secret")
    assert not any(k.startswith("kafka") for s in rendered.all("Secret") for k in s.get("data", {}))
    _materialise(
        rendered,
        tmp_path,
        {
            (s["metadata"]["name"], "clevertap-passcode-web"): _secret_file(tmp_path, "pc", "ci-passcode-web")
            for s in rendered.all("Secret")
        },
    )
    conf = kafka_client_config(_settings(rendered, monkeypatch, tmp_path))
    assert conf["security.protocol"] == "SASL_SSL"
    assert callable(conf["oauth_cb"])
    assert rendered.container()["image"].endswith(":0.1.0-msk")


def test_strimzi_mutual_tls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pki: dict[str, Path]) -> None:
    rendered = render(scenario("strimzi-mtls"))
    generated = rendered.one("Secret")["metadata"]["name"]
    _materialise(
        rendered,
        tmp_path,
        {
            ("events-cluster-ca-cert", "ca.crt"): pki["ca_crt"],
            ("clevertap-consumer", "user.crt"): pki["user_crt"],
            ("clevertap-consumer", "user.key"): pki["user_key"],
            (generated, "clevertap-passcode-web"): _secret_file(tmp_path, "pc", "ci-passcode-web"),
        },
    )
    settings = _settings(rendered, monkeypatch, tmp_path)
    conf = kafka_client_config(settings)
    assert Path(conf["ssl.certificate.location"]).read_bytes() == pki["user_crt"].read_bytes()
    assert Path(conf["ssl.key.location"]).read_bytes() == pki["user_key"].read_bytes()
    assert settings.schema_registry_ssl_ca_location is not None
    assert Path(settings.schema_registry_ssl_ca_location).read_bytes() == pki["ca_crt"].read_bytes()
    Consumer({**conf, "group.id": "chart-auth"}).close()  # librdkafka loads and matches cert and key


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (
            {"kafka": {"securityProtocol": "SASL_SSL", "sasl": {"mechanism": "OAUTHBEARER"}}},
            "kafka.sasl.oauthbearer.method",
        ),
        ({"kafka": {"sasl": {"oauthbearer": {"method": "oidc"}}}}, "kafka.sasl.mechanism"),
        (
            {
                "kafka": {
                    "securityProtocol": "SASL_SSL",
                    "sasl": {"mechanism": "OAUTHBEARER", "oauthbearer": {"method": "oidc", "clientId": "x"}},
                }
            },
            "tokenEndpointUrl",
        ),
        (
            {
                "kafka": {
                    "securityProtocol": "SASL_SSL",
                    "sasl": {"mechanism": "OAUTHBEARER", "oauthbearer": {"method": "aws_msk_iam"}},
                }
            },
            "awsRegion",
        ),
        (
            {"kafka": {"tls": {"clientCertificate": {"existingSecret": "user"}}}},
            "kafka.tls.clientCertificate.existingSecret",
        ),
        (
            {"schemaRegistry": {"url": "http://sr:8081", "tls": {"existingSecret": "ca"}}},
            "schemaRegistry.tls.existingSecret",
        ),
    ],
)
def test_bad_combinations_fail_the_render(override: dict[str, Any], named: str) -> None:
    with pytest.raises(HelmRenderError) as err:
        render(merge(scenario("default"), override))
    assert named in str(err.value)

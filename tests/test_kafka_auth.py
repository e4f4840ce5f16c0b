"""Each Kafka login mode reaches librdkafka (the dict and a real client built from it), and a
bad combination stops start-up naming the variable, without printing a secret."""

from __future__ import annotations

import base64
import http.server
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from confluent_kafka import Consumer, KafkaException, Producer

from consumer.codec.registry import Registry
from consumer.destinations import ConfigError
from consumer.settings import ClientSettings, kafka_client_config, load_client_settings, load_settings

from .support.pki import make_pki

AUTH_VARS = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SASL_OAUTHBEARER_METHOD",
    "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
    "KAFKA_SASL_OAUTHBEARER_CLIENT_ID",
    "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
    "KAFKA_SASL_OAUTHBEARER_SCOPE",
    "KAFKA_SASL_OAUTHBEARER_EXTENSIONS",
    "KAFKA_AWS_REGION",
    "KAFKA_SSL_CA_LOCATION",
    "KAFKA_SSL_CERTIFICATE_LOCATION",
    "KAFKA_SSL_KEY_LOCATION",
    "KAFKA_SSL_KEY_PASSWORD",
    "SCHEMA_REGISTRY_URL",
    "SCHEMA_REGISTRY_SSL_CA_LOCATION",
    "KAFKA_EXTRA_CONFIG",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SECRETS_DIRS", str(tmp_path / "secrets"))
    (tmp_path / "secrets").mkdir()
    for name in AUTH_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> ClientSettings:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return load_client_settings(ClientSettings)


def _real_client(conf: dict[str, object]) -> None:
    """librdkafka validates the whole config (and loads TLS files) when the client is built."""
    consumer = Consumer({**conf, "group.id": "auth-test"})
    consumer.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_oidc_settings_reach_librdkafka_and_the_secret_comes_from_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "secrets" / "kafka_sasl_oauthbearer_client_secret").write_text("oidc-secret-1\n")
    s = _settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="OAUTHBEARER",
        KAFKA_SASL_OAUTHBEARER_METHOD="oidc",
        KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL="https://idp.example/oauth2/token",
        KAFKA_SASL_OAUTHBEARER_CLIENT_ID="clevertap-consumer",
        KAFKA_SASL_OAUTHBEARER_SCOPE="kafka",
        KAFKA_SASL_OAUTHBEARER_EXTENSIONS="logicalCluster=lkc-1,identityPoolId=pool-1",
    )
    conf = kafka_client_config(s)
    assert {k: v for k, v in conf.items() if k.startswith("sasl.")} == {
        "sasl.mechanism": "OAUTHBEARER",
        "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.token.endpoint.url": "https://idp.example/oauth2/token",
        "sasl.oauthbearer.client.id": "clevertap-consumer",
        "sasl.oauthbearer.client.secret": "oidc-secret-1",
        "sasl.oauthbearer.scope": "kafka",
        "sasl.oauthbearer.extensions": "logicalCluster=lkc-1,identityPoolId=pool-1",
    }
    assert "oidc-secret-1" not in repr(s)
    _real_client(conf)
    # librdkafka itself refuses OIDC without its endpoint: the keys above are the ones it reads.
    with pytest.raises(KafkaException, match=r"token\.endpoint\.url"):
        _real_client({k: v for k, v in conf.items() if k != "sasl.oauthbearer.token.endpoint.url"})


def test_msk_iam_signs_a_token_with_the_aws_signer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLETEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s = _settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="OAUTHBEARER",
        KAFKA_SASL_OAUTHBEARER_METHOD="aws_msk_iam",
        KAFKA_AWS_REGION="eu-west-1",
    )
    conf = kafka_client_config(s)
    assert conf["sasl.mechanism"] == "OAUTHBEARER"
    assert "sasl.oauthbearer.method" not in conf  # the callback, not librdkafka, makes tokens
    token, expiry = conf["oauth_cb"]("")
    url = urlsplit(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    assert url.hostname == "kafka.eu-west-1.amazonaws.com"
    query = parse_qs(url.query)
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLETEST/")
    assert expiry > 1.7e9  # seconds since the epoch, as confluent-kafka wants
    producer = Producer(conf)  # a real client takes the callback
    producer.flush(0)


def test_mutual_tls_files_are_loaded_by_librdkafka(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path]
) -> None:
    s = _settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CA_LOCATION=str(pki["ca_crt"]),
        KAFKA_SSL_CERTIFICATE_LOCATION=str(pki["user_crt"]),
        KAFKA_SSL_KEY_LOCATION=str(pki["user_key"]),
    )
    conf = kafka_client_config(s)
    assert (conf["ssl.ca.location"], conf["ssl.certificate.location"], conf["ssl.key.location"]) == (
        str(pki["ca_crt"]),
        str(pki["user_crt"]),
        str(pki["user_key"]),
    )
    _real_client(conf)
    # librdkafka really reads them: a key that does not match the certificate is refused.
    with pytest.raises(KafkaException):
        _real_client({**conf, "ssl.key.location": str(pki["other_key"])})


@pytest.fixture
def https_registry(pki: dict[str, Path]) -> Iterator[str]:
    """A loopback HTTPS server answering GET /subjects like a Schema Registry, behind our CA."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'["events-value"]'
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server_crt"], pki["server_key"])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_schema_registry_ca_is_trusted(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path], https_registry: str
) -> None:
    without = Registry.from_settings(_settings(monkeypatch, SCHEMA_REGISTRY_URL=https_registry))
    assert without is not None
    with pytest.raises(Exception, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        without.client.get_subjects()
    with_ca = Registry.from_settings(
        _settings(monkeypatch, SCHEMA_REGISTRY_SSL_CA_LOCATION=str(pki["ca_crt"]))
    )
    assert with_ca is not None
    assert with_ca.client.get_subjects() == ["events-value"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SASL_MECHANISM": "PLAIN"}, "KAFKA_SASL_MECHANISM"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "OAUTHBEARER"},
            "KAFKA_SASL_OAUTHBEARER_METHOD",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "OAUTHBEARER",
                "KAFKA_SASL_OAUTHBEARER_METHOD": "oidc",
                "KAFKA_SASL_OAUTHBEARER_CLIENT_ID": "x",
                "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET": "oidc-secret-2",
            },
            "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
        ),
        ({"KAFKA_SASL_OAUTHBEARER_CLIENT_ID": "x"}, "KAFKA_SASL_OAUTHBEARER_CLIENT_ID"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "OAUTHBEARER",
                "KAFKA_SASL_OAUTHBEARER_METHOD": "aws_msk_iam",
            },
            "KAFKA_AWS_REGION",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SASL_MECHANISM": "OAUTHBEARER",
                "KAFKA_SASL_OAUTHBEARER_METHOD": "aws_msk_iam",
                "KAFKA_AWS_REGION": "eu-west-1",
            },
            "KAFKA_SECURITY_PROTOCOL",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTIFICATE_LOCATION": "/dev/null"},
            "KAFKA_SSL_KEY_LOCATION",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": "/nonexistent/ca.crt"},
            "KAFKA_SSL_CA_LOCATION",
        ),
        ({"KAFKA_SSL_CA_LOCATION": "/dev/null"}, "KAFKA_SSL_CA_LOCATION"),
        ({"SCHEMA_REGISTRY_SSL_CA_LOCATION": "/nonexistent/sr-ca.crt"}, "SCHEMA_REGISTRY_SSL_CA_LOCATION"),
    ],
)
def test_bad_combinations_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named) as caught:
        _settings(monkeypatch, **env)
    assert "oidc-secret-2" not in str(caught.value)


def test_service_start_up_stops_with_exit_2_naming_the_setting(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in AUTH_VARS and not k.startswith(("KAFKA_", "DESTINATIONS", "SCHEMA_REGISTRY"))
    }
    env |= {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "KAFKA_TOPICS": "events",
        "DESTINATIONS_FILE": str(tmp_path / "d.yaml"),
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "OAUTHBEARER",
        "KAFKA_SASL_OAUTHBEARER_METHOD": "oidc",
        "SECRETS_DIRS": str(tmp_path),
        "LOG_FORMAT": "console",
    }
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL" in done.stdout + done.stderr


def test_service_settings_carry_the_auth_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAFKA_TOPICS", "events")
    monkeypatch.setenv("DESTINATIONS_FILE", str(tmp_path / "d.yaml"))
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigError, match="KAFKA_SASL_MECHANISM"):
        load_settings()

"""Settings come from the environment and secret files; a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.destinations import ConfigError
from consumer.settings import kafka_client_config, load_settings

REQUIRED = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "KAFKA_TOPICS": "events, attribution",
    "DESTINATIONS_FILE": "/etc/destinations.yaml",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("SECRETS_DIRS", str(tmp_path / "none"))
    for name in (
        *REQUIRED,
        "KAFKA_SASL_PASSWORD",
        "METRICS_PORT",
        "KAFKA_EXTRA_CONFIG",
        "CLEVERTAP_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def _env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for k, v in {**REQUIRED, **values}.items():
        monkeypatch.setenv(k, v)


def test_topics_are_split_and_defaults_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch)
    s = load_settings()
    assert s.kafka_topics == ("events", "attribution")
    assert s.kafka_group_id == "clevertap-consumer"
    assert s.clevertap_max_in_flight == 15
    assert s.batch_max_records == 1000


def test_missing_and_invalid_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_TOPICS", " , ")
    monkeypatch.setenv("METRICS_PORT", "ninety")
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPICS", "DESTINATIONS_FILE", "METRICS_PORT"):
        assert name in text


def test_clevertap_concurrency_cannot_exceed_the_api_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, CLEVERTAP_MAX_IN_FLIGHT="16")
    with pytest.raises(ConfigError, match="CLEVERTAP_MAX_IN_FLIGHT"):
        load_settings()


def test_extra_kafka_config_must_be_a_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, KAFKA_EXTRA_CONFIG='{"fetch.max.bytes": 1048576}')
    assert load_settings().kafka_extra_config == {"fetch.max.bytes": "1048576"}
    _env(monkeypatch, KAFKA_EXTRA_CONFIG="fetch.max.bytes=1")
    with pytest.raises(ConfigError, match="KAFKA_EXTRA_CONFIG"):
        load_settings()


def test_secret_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "kafka_sasl_password").write_text("from-file")
    monkeypatch.setenv("SECRETS_DIRS", f"{tmp_path / 'missing'}:{secrets}")
    _env(monkeypatch)
    s = load_settings()
    assert s.kafka_sasl_password is not None
    assert s.kafka_sasl_password.get_secret_value() == "from-file"
    assert "from-file" not in repr(s)
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "from-env")
    s = load_settings()
    assert s.kafka_sasl_password is not None
    assert s.kafka_sasl_password.get_secret_value() == "from-env"


def test_readme_configuration_table_is_the_settings_model() -> None:
    from pathlib import Path

    from consumer.settings import settings_table

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert settings_table() in readme, "README's table drifted: paste consumer.settings.settings_table()"


def test_extra_kafka_config_reaches_every_client_but_never_replaces_a_named_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _env(
        monkeypatch,
        KAFKA_EXTRA_CONFIG='{"ssl.certificate.location": "/certs/client.pem", "bootstrap.servers": "elsewhere:9092"}',
    )
    conf = kafka_client_config(load_settings())
    assert conf["ssl.certificate.location"] == "/certs/client.pem"
    assert conf["bootstrap.servers"] == "127.0.0.1:9092"

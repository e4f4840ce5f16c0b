"""Service settings: environment variables, `.env`, and secret files (Kubernetes/compose mounts).

Names are flat and unprefixed (`KAFKA_BOOTSTRAP_SERVERS`, `CLEVERTAP_BASE_URL`, …) because
operators and other tools already use these names. Secret values (`KAFKA_SASL_PASSWORD`,
`SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO`) may also be files named like the variable in one of the
`SECRETS_DIRS` (default /run/secrets:/etc/clevertap-consumer/secrets); an environment
variable wins over a file. Invalid values stop start-up with a message naming the variable.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

from confluent_kafka import KafkaException, Producer
from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from . import kafka_auth
from .clevertap_api import MAX_RECORDS
from .destinations import ConfigError
from .logs import SECRET_PROPERTY

SECRETS_DIRS = ("/run/secrets", "/etc/clevertap-consumer/secrets")
DEFAULT_DLQ_TOPIC = "clevertap-consumer-dlq"


def secrets_dirs() -> list[str]:
    """The secret-file folders that exist; `SECRETS_DIRS` (colon-separated) replaces the default list."""
    configured = os.environ.get("SECRETS_DIRS")
    candidates = configured.split(":") if configured else SECRETS_DIRS
    return [d for d in candidates if d and os.path.isdir(d)]


#: Secrets shorter than this cannot be redacted safely (every occurrence of a two-letter
#: password in the logs would become `***`): they are refused at start-up instead.
MIN_SECRET_CHARS = 6
#: Kafka's legal topic names (`kafka.common.internals.Topic`).
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


def check_secret(value: str) -> str:
    """`value` unless it is too short to keep out of logs (the caller names the setting)."""
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(f"shorter than {MIN_SECRET_CHARS} characters, too short to redact from logs safely")
    return value


def check_topic_name(name: str) -> str:
    if not _TOPIC_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"{name[:260]!r} is not a valid Kafka topic name (1-249 of A-Z a-z 0-9 . _ -)")
    return name


_PROBE_LOG = logging.getLogger("consumer.settings.extra_config_probe")
_PROBE_LOG.addHandler(logging.NullHandler())
_PROBE_LOG.propagate = False  # librdkafka warnings can quote values: they never leave this check


def check_extra_config(extra: dict[str, str]) -> dict[str, str]:
    """Let librdkafka itself judge KAFKA_EXTRA_CONFIG (unknown property, bad value) without
    connecting anywhere; the error names the property, never its value (it may be a password)."""
    if not extra:
        return extra
    try:
        Producer({**extra, "bootstrap.servers": "127.0.0.1:9", "logger": _PROBE_LOG})
    except (KafkaException, ValueError, TypeError) as exc:
        text = str(exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else exc)
        named = re.search(r'property "([^"]+)"', text) or re.search(r"property: \"?([\w.]+)", text)
        prop = named.group(1) if named else None
        if prop is None:
            prop = next((k for k in extra if k in text), None)
        if "No such configuration property" in text:
            raise ValueError(f"unknown librdkafka property {prop!r}") from None
        if prop is not None:
            raise ValueError(f"librdkafka refuses the value of {prop!r}") from None
        raise ValueError("librdkafka refuses these settings") from None
    return extra


def parse_extra_config(value: Any) -> Any:
    """KAFKA_EXTRA_CONFIG as a dict of strings: librdkafka takes every setting as text."""
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON object: {exc.msg}") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object of librdkafka settings")
    return {str(k): str(v) for k, v in value.items()}


class ClientSettings(BaseSettings):
    """The service's Kafka and Schema Registry variables, the same names, nothing else required.

    For the operator tools (`produce`, `dlq`): they run beside the service, from its environment
    and secret files, but consume no topics and route to no destinations, so they must not need
    KAFKA_TOPICS or DESTINATIONS_FILE.
    """

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", env_file=".env")

    kafka_bootstrap_servers: str = Field(description="Kafka bootstrap servers, host:port[,host:port].")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="librdkafka security.protocol."
    )
    kafka_sasl_mechanism: str | None = Field(None, description="SASL mechanism, e.g. PLAIN, SCRAM-SHA-512.")
    kafka_sasl_username: str | None = Field(None, description="SASL username.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret; file allowed).")
    kafka_sasl_oauthbearer_method: Literal["oidc", "aws_msk_iam"] | None = Field(
        None,
        description="With KAFKA_SASL_MECHANISM=OAUTHBEARER: `oidc` (librdkafka fetches tokens) or `aws_msk_iam` (extra `msk`).",
    )
    kafka_sasl_oauthbearer_token_endpoint_url: str | None = Field(
        None, description="OIDC token endpoint URL."
    )
    kafka_sasl_oauthbearer_client_id: str | None = Field(None, description="OIDC client id.")
    kafka_sasl_oauthbearer_client_secret: SecretStr | None = Field(
        None, description="OIDC client secret (secret; file allowed)."
    )
    kafka_sasl_oauthbearer_scope: str | None = Field(
        None, description="OIDC scope, if the provider needs one."
    )
    kafka_sasl_oauthbearer_extensions: str | None = Field(
        None,
        description="SASL extensions `k=v,k=v` (Confluent Cloud: `logicalCluster=lkc-…,identityPoolId=pool-…`).",
    )
    kafka_aws_region: str | None = Field(None, description="AWS region of the MSK cluster (aws_msk_iam).")
    kafka_ssl_ca_location: str | None = Field(None, description="CA bundle for SSL.")
    kafka_ssl_certificate_location: str | None = Field(
        None, description="Client certificate (PEM) for mutual TLS, e.g. a Strimzi KafkaUser's user.crt."
    )
    kafka_ssl_key_location: str | None = Field(None, description="Client private key (PEM) for mutual TLS.")
    kafka_ssl_key_password: SecretStr | None = Field(
        None, description="Password of an encrypted client key (secret; file allowed)."
    )
    kafka_extra_config: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description='Extra librdkafka settings for every Kafka client, as a JSON object, e.g. {"fetch.max.bytes": "1048576"}.',
    )
    schema_registry_url: AnyHttpUrl | None = Field(
        None, description="Schema Registry URL; unset means plain Avro with the bundled schema."
    )
    schema_registry_basic_auth_user_info: SecretStr | None = Field(
        None, description="Schema Registry `user:password` (secret; file allowed)."
    )
    schema_registry_ssl_ca_location: str | None = Field(
        None, description="CA bundle for an HTTPS Schema Registry with a private CA."
    )
    kafka_value_format: Literal["auto", "avro", "json"] = Field(
        "auto",
        description="Value encoding: `auto` tells JSON (first byte `{`) from Avro per record; `avro` or `json` forces one.",
    )

    @field_validator("kafka_extra_config", mode="before")
    @classmethod
    def _parse_extra(cls, value: Any) -> Any:
        return parse_extra_config(value)

    @field_validator("kafka_extra_config")
    @classmethod
    def _librdkafka_accepts(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if SECRET_PROPERTY.search(key):
                try:
                    check_secret(text)
                except ValueError as exc:
                    raise ValueError(f"{key!r}: {exc}") from None
        return check_extra_config(value)

    @field_validator("kafka_sasl_password", "kafka_sasl_oauthbearer_client_secret", "kafka_ssl_key_password")
    @classmethod
    def _redactable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value())
        return value

    @field_validator("schema_registry_basic_auth_user_info")
    @classmethod
    def _user_colon_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        user, colon, password = value.get_secret_value().partition(":")
        if not colon or not user:
            raise ValueError("must be user:password (no colon found, or no user before it)")
        check_secret(password)
        return value

    @model_validator(mode="after")
    def _credentials_once(self) -> ClientSettings:
        url = self.schema_registry_url
        if url is not None and (url.username or url.password):
            if self.schema_registry_basic_auth_user_info is not None:
                raise ValueError(
                    "SCHEMA_REGISTRY_URL carries user:password and SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"
                    " is set too: give the credentials once (in SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO)"
                )
            check_secret(url.password or "")
        return self

    @model_validator(mode="after")
    def _check_auth(self) -> Self:
        if found := kafka_auth.problems(self):
            raise ValueError("; ".join(found))
        return self


class Settings(ClientSettings):
    """Everything `clevertap-consumer run` can be told. Field docs become the README table."""

    model_config = SettingsConfigDict(validate_default=True)

    # Kafka
    kafka_topics: Annotated[tuple[str, ...], NoDecode] = Field(
        description="Topics to consume, comma-separated."
    )
    kafka_group_id: str = Field(
        "clevertap-consumer", min_length=1, pattern=r"\S", description="Consumer group id."
    )
    kafka_group_instance_id: str | None = Field(
        None, description="Static membership id (e.g. the pod name); empty for dynamic membership."
    )
    kafka_session_timeout_ms: int = Field(45000, ge=1000, description="Consumer session.timeout.ms.")
    kafka_regulation_topic: str | None = Field(
        None,
        description="Topic of user-deletion (regulation) requests, consumed in the group `<KAFKA_GROUP_ID>-regulation`; unset: deletion off.",
    )

    # Decoding

    # Destinations and CleverTap
    destinations_file: Path = Field(
        description="JSON or YAML file mapping destinationId to CleverTap accounts."
    )
    clevertap_base_url: AnyHttpUrl | None = Field(
        None, description="Send every region to this base URL instead (proxy, fake CleverTap)."
    )
    clevertap_timeout_seconds: float = Field(
        30.0, gt=0, allow_inf_nan=False, description="HTTP timeout per request attempt."
    )
    clevertap_max_in_flight: int = Field(
        15, ge=1, le=15, description="Concurrent requests per account (CleverTap allows 15)."
    )
    delivery_retry_budget_seconds: float = Field(
        300.0,
        gt=0,
        allow_inf_nan=False,
        description="How long one batch may be retried (429, 5xx, network) before its records go to the DLQ.",
    )
    delivery_max_attempts: int = Field(20, ge=1, description="Attempts per batch before the DLQ.")
    batch_max_records: int = Field(
        1000, ge=1, le=MAX_RECORDS, description="Records per upload request (tokens: ≤ 100)."
    )
    batch_max_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Body bytes per upload request.")
    batch_linger_ms: int = Field(
        200, ge=0, description="How long a partly filled batch waits for more records."
    )

    # Flow control and commits
    max_in_flight_records: int = Field(
        20000, ge=1, description="Pause consumption above this many unfinished records."
    )
    max_in_flight_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Pause consumption above this many unfinished message bytes."
    )
    max_in_flight_records_per_account: int | None = Field(
        None,
        ge=1,
        description="Each CleverTap account's share of MAX_IN_FLIGHT_RECORDS: an account still at it "
        "after 1 s has its new records deferred (read again from Kafka later) while other accounts "
        "flow; unset: half of MAX_IN_FLIGHT_RECORDS.",
    )
    max_in_flight_bytes_per_account: int | None = Field(
        None,
        ge=1024,
        description="The same per account for MAX_IN_FLIGHT_BYTES; unset: half of it.",
    )
    max_tracked_offsets_per_partition: int = Field(
        20000,
        ge=100,
        description="Pause a partition while this many of its offsets wait above its committed "
        "offset (deferred, or done behind a stuck record): bounds memory if an account never recovers.",
    )
    commit_interval_ms: int = Field(
        20,
        ge=1,
        le=60_000,
        description="Finished offsets (with their offset maps) are committed as soon as they finish, "
        "at most once per this interval; a kill -9 repeats what finished and was not committed yet.",
    )
    drain_timeout_seconds: float = Field(
        20.0,
        gt=0,
        allow_inf_nan=False,
        description="On SIGTERM, how long to wait for in-flight deliveries before closing.",
    )
    revoke_timeout_seconds: float = Field(
        10.0,
        gt=0,
        allow_inf_nan=False,
        description="On rebalance, how long to wait for a revoked partition's deliveries.",
    )

    workers: int = Field(
        1,
        ge=1,
        le=15,
        description="Consumer processes in the pod, members of the one group (one core each);"
        ' `CLEVERTAP_MAX_IN_FLIGHT` is split between them. See "Scaling: WORKERS".',
    )

    # Dead letters
    dlq_topic: str = Field(DEFAULT_DLQ_TOPIC, min_length=1, description="Dead-letter topic.")
    dlq_topic_partitions: int = Field(
        3, ge=1, description="Partitions of the DLQ topic when the service creates it."
    )
    dlq_topic_retention_ms: int = Field(
        14 * 24 * 3600 * 1000,
        ge=-1,
        description="retention.ms of the DLQ topic when the service creates it (-1: forever).",
    )

    # Operations
    metrics_host: str = Field("0.0.0.0", description="Address for /metrics, /healthz, /readyz.")
    metrics_port: int = Field(
        9100, ge=0, le=65535, description="Port for /metrics, /healthz, /readyz (0: any)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["json", "console", "auto"] = Field(
        "auto", description="json, console, or auto (console on a terminal, else json)."
    )

    @field_validator("kafka_topics", mode="before")
    @classmethod
    def _split_topics(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(t.strip() for t in value.split(",") if t.strip())
        if not value:
            raise ValueError("name at least one topic")
        return tuple(check_topic_name(str(t)) for t in value)

    @field_validator("dlq_topic")
    @classmethod
    def _dlq_topic_name(cls, value: str) -> str:
        return check_topic_name(value)

    @model_validator(mode="after")
    def _budgets_within_the_bound(self) -> Settings:
        for per_account, bound in (
            ("max_in_flight_records_per_account", "max_in_flight_records"),
            ("max_in_flight_bytes_per_account", "max_in_flight_bytes"),
        ):
            value = getattr(self, per_account)
            if value is not None and value > getattr(self, bound):
                raise ValueError(
                    f"{per_account.upper()} ({value}) is above {bound.upper()} ({getattr(self, bound)}): "
                    "an account's budget is a share of the overall bound"
                )
        return self

    @model_validator(mode="after")
    def _a_request_slot_per_worker(self) -> Settings:
        if self.workers > self.clevertap_max_in_flight:
            raise ValueError(
                f"WORKERS ({self.workers}) is more than CLEVERTAP_MAX_IN_FLIGHT"
                f" ({self.clevertap_max_in_flight}): the workers share the account's request cap,"
                " and each needs at least one request"
            )
        return self

    @model_validator(mode="after")
    def _dlq_not_a_source(self) -> Settings:
        if self.dlq_topic in self.kafka_topics:
            raise ValueError(
                f"DLQ_TOPIC {self.dlq_topic!r} is also in KAFKA_TOPICS: a poison record would feed itself"
            )
        return self


AnySettings = TypeVar("AnySettings", bound=BaseSettings)


def _load(model: type[AnySettings], overrides: dict[str, Any]) -> AnySettings:
    """Build `model` from the environment, turning validation errors into a ConfigError naming
    variables (never their values: a secret may be the value that failed)."""
    try:
        return model(_secrets_dir=secrets_dirs() or None, **overrides)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            name = "_".join(str(p) for p in e["loc"][:1]).upper()
            message = e["msg"].removeprefix("Value error, ")
            # A whole-model check (kafka_auth) has no location: its message names the variables.
            problems.append(f"{name}: {message}" if name else message)
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None


def load_settings(**overrides: Any) -> Settings:
    """The service's settings from the environment and secret files."""
    return _load(Settings, overrides)


def load_client_settings(model: type[AnySettings], /, **overrides: Any) -> AnySettings:
    """A tool's settings (`ClientSettings` or a subclass) from the environment and secret files."""
    return _load(model, overrides)


def kafka_client_config(settings: Settings | ClientSettings) -> dict[str, Any]:
    """librdkafka settings every client of ours shares: where the brokers are, how to log in,
    and KAFKA_EXTRA_CONFIG (the named settings win over it).

    The login settings come from `kafka_auth` (the only place secrets are unwrapped).
    """
    conf: dict[str, Any] = {
        **settings.kafka_extra_config,
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
        "client.id": "clevertap-consumer",
    }
    return {**conf, **kafka_auth.librdkafka_auth(settings)}


def tool_producer_config(
    settings: ClientSettings, client_id: str, *, delivery_timeout_ms: int = 30000
) -> dict[str, Any]:
    """librdkafka settings for a tool that publishes: a record counts only once every replica has
    it (idempotent, acks=all), so a tool's "produced N" is never an overstatement."""
    return {
        **kafka_client_config(settings),
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 10,
        "message.timeout.ms": delivery_timeout_ms,
    }


def settings_table() -> str:
    """The README's configuration table, rendered from the field definitions so it cannot drift."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, f in Settings.model_fields.items():
        if f.is_required():
            default = "required"
        elif f.default_factory is not None:
            default = "`{}`"
        elif f.default is None:
            default = "unset"
        else:
            default = f"`{f.default}`"
        rows.append(f"| `{name.upper()}` | {default} | {f.description or ''} |")
    return "\n".join(rows)

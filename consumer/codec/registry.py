"""The Schema Registry connection: built from settings, quick to fail, never leaking credentials.

confluent-kafka's `SchemaRegistryClient` does the HTTP (Confluent REST API, basic auth, its own
cache of schemas by id). Its defaults retry for up to ~20 s with backoff; decoding runs on the
poll thread, so the client here gives up within seconds and lets the pipeline retry the record
(`DecodeError.transient`) while it keeps polling.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from pydantic import SecretStr

from .errors import DecodeError

#: Seconds per HTTP attempt, attempts after the first, and the wait between them.
REGISTRY_TIMEOUT_SECONDS = 5.0
REGISTRY_RETRIES = 1
REGISTRY_RETRY_WAIT_MS = 100

#: Confluent Schema Registry's error code for "schema not found".
SCHEMA_NOT_FOUND = 40403


class RegistrySettings(Protocol):
    """The two settings the codec reads; `consumer.settings.Settings` and the produce settings fit."""

    @property
    def schema_registry_url(self) -> Any: ...  # AnyHttpUrl | str | None

    @property
    def schema_registry_basic_auth_user_info(self) -> SecretStr | None: ...

    @property
    def schema_registry_ssl_ca_location(self) -> str | None: ...


def public_url(url: str) -> str:
    """The URL without user info: the only form of it that may appear in a message."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


class Registry:
    """A `SchemaRegistryClient` plus what is needed to talk about it safely."""

    def __init__(self, client: SchemaRegistryClient, label: str, secrets: tuple[str, ...] = ()) -> None:
        self.client = client
        self.label = label
        self._secrets = tuple(s for s in secrets if s)

    @classmethod
    def connect(
        cls, url: str, user_info: SecretStr | None = None, ca_location: str | None = None
    ) -> Registry:
        """A client for `url`; `user_info` is `user:password` for basic auth (or in the URL);
        `ca_location` a CA bundle for a registry behind a private CA."""
        conf: dict[str, Any] = {
            "url": url,
            "timeout": REGISTRY_TIMEOUT_SECONDS,
            "max.retries": REGISTRY_RETRIES,
            "retries.wait.ms": REGISTRY_RETRY_WAIT_MS,
            "retries.max.wait.ms": REGISTRY_RETRY_WAIT_MS * 4,
        }
        if ca_location:
            conf["ssl.ca.location"] = ca_location
        secrets: list[str] = []
        parts = urlsplit(url)
        if parts.password:
            secrets += [parts.password, f"{parts.username}:{parts.password}"]
        if user_info is not None:
            conf["basic.auth.user.info"] = user_info.get_secret_value()
            secrets.append(user_info.get_secret_value())
            secrets.append(user_info.get_secret_value().partition(":")[2])
        label = f"schema registry {public_url(url)}"
        try:
            client = SchemaRegistryClient(conf)
        except ValueError as exc:  # e.g. user info both in the URL and in the setting
            raise ValueError(_scrub(str(exc), tuple(secrets))) from None
        return cls(client, label, tuple(secrets))

    @classmethod
    def from_settings(cls, settings: RegistrySettings) -> Registry | None:
        """The registry the settings name, or None for plain Avro with the bundled schema."""
        url = settings.schema_registry_url
        if url is None or not str(url).strip():
            return None
        return cls.connect(
            str(url), settings.schema_registry_basic_auth_user_info, settings.schema_registry_ssl_ca_location
        )

    def close(self) -> None:
        self.client.close()

    def scrub(self, text: str) -> str:
        """`text` with every credential this registry knows replaced by `***`."""
        return _scrub(text, self._secrets)

    def failure(self, exc: Exception, doing: str) -> DecodeError:
        """Classify a client failure while `doing` something, without the credentials or payload.

        Only "schema not found" (HTTP 404 with error code 40403) condemns the message. Anything
        else says the registry could not answer, or that our configuration is wrong (401/403,
        a 404 from a wrong URL path): dead-lettering every record of the topic for that would
        turn an outage into a mass DLQ, so those are transient and the pipeline retries.
        """
        if isinstance(exc, SchemaRegistryError):
            status, code = exc.http_status_code, exc.error_code
            if status == 404 and code == SCHEMA_NOT_FOUND:
                return DecodeError(
                    "unknown_schema_id", f"{doing}: not in the {self.label} (HTTP 404, error code {code})"
                )
            if status in (408, 429) or status >= 500:
                return DecodeError(
                    "registry_unavailable",
                    f"{doing}: the {self.label} answered HTTP {status} (error code {code})",
                    transient=True,
                )
            return DecodeError(
                "registry_error",
                f"{doing}: the {self.label} refused the request with HTTP {status} (error code {code});"
                " check SCHEMA_REGISTRY_URL and SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
                transient=True,
            )
        # No HTTP answer: connection refused/reset, DNS, timeout, TLS (httpx or httpx2 errors,
        # depending on which one confluent-kafka picked), or a reply that was not JSON.
        return DecodeError(
            "registry_unavailable",
            f"{doing}: the {self.label} cannot be reached ({type(exc).__name__}: {self.scrub(str(exc))[:200]})",
            transient=True,
        )


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text

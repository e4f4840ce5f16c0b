"""Start-up of everything an operator watches, in the one order that is safe.

Logging is configured and every secret registered before anything can log (a connection error
that echoes a SASL password must already be redacted); metric series are created before the
first scrape; the health server starts last, not ready until the group assigns partitions.
The pipeline calls `start()` once and uses the returned handles.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from . import metrics
from .destinations import ConfigError, Destination, DestinationsFile
from .health import Health, HealthServer, serve
from .kafka_stats import KafkaStats
from .logs import configure_logging, register_secret, register_settings_secrets
from .settings import Settings, check_secret


@dataclass(frozen=True, slots=True)
class Observability:
    """Handles for the pipeline: `health` to beat and update, `kafka_stats` as the consumer's
    `stats_cb`, `server` to close on exit."""

    health: Health
    server: HealthServer
    kafka_stats: KafkaStats

    def close(self) -> None:
        self.server.close()


def destination_secrets(
    destinations: DestinationsFile, environ: Mapping[str, str] = os.environ
) -> list[SecretStr]:
    """Every secret the destinations file names (passcodes, account tokens), each checked to be
    long enough to redact. Start-up and a reload both call this before registering them: a
    short passcode arriving by reload would otherwise be used, and the log could not hide it.
    Raises ConfigError naming the destination and the key."""
    return [s for d in destinations.destinations for s in checked_secrets(d, environ)]


def checked_secrets(destination: Destination, environ: Mapping[str, str] = os.environ) -> list[SecretStr]:
    """One destination's secrets, read and checked (`check-config` reports each destination)."""
    found: list[SecretStr] = []
    passcode = destination.resolve_passcode(environ)
    partner = destination.attribution_partner
    partner_token = None if partner is None else partner.account_token
    for name, secret in (
        ("passcode", passcode),
        ("accountToken", destination.account_token),
        ("attributionPartner.accountToken", partner_token),
    ):
        if secret is None:
            continue
        try:
            check_secret(secret.get_secret_value())
        except ValueError as exc:
            raise ConfigError(f"destination {destination.id!r}: {name} is {exc}") from None
        found.append(secret)
    return found


def start(
    settings: Settings,
    destinations: DestinationsFile,
    *,
    reasons: Mapping[str, Iterable[str]] | None = None,
    retry_reasons: Iterable[str] = (),
    http_errors: Iterable[str] = (),
    fix_kinds: Iterable[str] = (),
    stall_after: float = 60.0,
    environ: Mapping[str, str] = os.environ,
) -> Observability:
    """Configure logs, register secrets, pre-create metric series, serve /metrics and probes.

    `reasons` (stage → failure reasons) and `fix_kinds` are the transform's and codec's label
    vocabularies, so their series exist at 0 from the first scrape. Raises ConfigError when a
    passcode cannot be resolved or is too short to redact, or the metrics port is taken.
    """
    configure_logging(settings.log_level, settings.log_format)
    register_settings_secrets(settings)
    register_secret(*destination_secrets(destinations, environ))

    metrics.initialise(
        topics=settings.kafka_topics,
        accounts=sorted({d.account_id for d in destinations.destinations}),
        destinations=[d.id for d in destinations.destinations],
        reasons=reasons,
        retry_reasons=retry_reasons,
        http_errors=http_errors,
        fix_kinds=fix_kinds,
        concurrency=settings.clevertap_max_in_flight,
    )
    health = Health(stall_after=stall_after)
    try:
        server = serve(health, settings.metrics_host, settings.metrics_port)
    except OSError as exc:  # alone, "Address already in use" does not say which setting to change
        raise ConfigError(
            f"METRICS_PORT: cannot serve on {settings.metrics_host}:{settings.metrics_port}"
            f" (METRICS_HOST:METRICS_PORT): {exc.strerror or exc}"
        ) from None
    return Observability(health=health, server=server, kafka_stats=KafkaStats(health))

"""`check-config`'s logic: every problem of a configuration in one run, then probes of what it
points at (Kafka, the Schema Registry, each CleverTap account) with requests that change nothing.

Start-up stops at the first problem because it cannot go on; an operator fixing a file wants
the whole list at once, so here every check runs whatever the others found. Probes say whether
a failure is something to fix in the configuration (a rejected passcode: exit 2) or something
to wait for (nothing answers: exit 1).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
from pydantic import ValidationError

from .destinations import (
    ConfigError,
    Destination,
    DestinationsFile,
    describe_errors,
    duplicate_ids_problem,
    read_destinations_data,
)
from .observability import checked_secrets
from .settings import Settings, kafka_client_config

#: A probe's verdict: fine, something to fix in the configuration, or something not answering.
Verdict = Literal["ok", "config", "unreachable"]
EXIT_STATUS: Mapping[Verdict, int] = {"ok": 0, "unreachable": 1, "config": 2}
PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class FileCheck:
    """The destinations file as far as it is valid, and everything wrong with it."""

    loaded: DestinationsFile | None
    usable: tuple[Destination, ...]  # valid entries whose passcode could be read
    problems: tuple[str, ...]


def check_destinations_file(path: Path, environ: Mapping[str, str] = os.environ) -> FileCheck:
    """Validate the file and read every passcode, collecting every problem instead of the first.

    pydantic reports every entry's field errors together, but checks the file-wide rule (unique
    ids) only once all entries are valid, and start-up reads passcodes only after that; here the
    ids are compared and each valid entry's passcode is read regardless.
    """
    try:
        data = read_destinations_data(path)
    except ConfigError as exc:
        return FileCheck(None, (), (str(exc),))
    problems: list[str] = []
    loaded: DestinationsFile | None = None
    valid: list[Destination] = []
    try:
        loaded = DestinationsFile.model_validate(data)
        valid = list(loaded.destinations)
    except ValidationError as exc:
        problems += [f"{path}: {line}" for line in describe_errors(exc)]
        entries = data.get("destinations") if isinstance(data, Mapping) else None
        if isinstance(entries, list):
            dup = duplicate_ids_problem(e["id"] for e in entries if isinstance(e, Mapping) and e.get("id"))
            if dup:
                problems.append(f"{path}: destinations: {dup}")
            valid = list(_valid_entries(entries))
    usable = []
    for d in valid:
        try:
            checked_secrets(d, environ)  # readable, and long enough to redact (as start-up)
            usable.append(d)
        except ConfigError as exc:
            problems.append(f"{path}: {exc}")
    return FileCheck(loaded, tuple(usable), tuple(problems))


def _valid_entries(entries: Iterable[Any]) -> Iterable[Destination]:
    for entry in entries:
        try:
            yield Destination.model_validate(entry)
        except ValidationError:
            continue  # already reported by the whole-file validation


def effective(destinations: Iterable[Destination]) -> dict[str, Any]:
    """What the service would use, passcodes redacted."""
    return {
        "destinations": [
            {
                "id": d.id,
                "accountId": d.account_id,
                "passcode": "**********",
                "region": d.region,
                "host": d.host,
                "profile": d.profile.value,
                "trackAnonymous": d.track_anonymous,
                "enableObjectIdMapping": d.enable_object_id_mapping,
                "eventFilteringOption": d.event_filtering_option.value,
                "whitelistedEvents": list(d.whitelisted_events),
                "blacklistedEvents": list(d.blacklisted_events),
                "accountToken": None if d.account_token is None else "**********",
                "consentRules": len(d.consent_gate().rules) + len(d.consent_gate().legacy),
                "ignoredKeys": list(d.ignored_keys),  # device-mode only, no effect here
            }
            for d in destinations
        ]
    }


# --- probes -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """One thing asked, and what came of it."""

    subject: str
    verdict: Verdict
    detail: str

    def line(self) -> str:
        mark = {"ok": "ok  ", "config": "FAIL", "unreachable": "FAIL"}[self.verdict]
        return f"{mark} {self.subject}: {self.detail}"


def probe_kafka(settings: Settings, timeout: float = PROBE_TIMEOUT_S) -> list[Probe]:
    """Can the brokers be reached with these settings, and do the topics exist?"""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    # librdkafka would log every failed connection attempt; the probe's verdict says it once.
    quiet = logging.getLogger("consumer.config_check.kafka")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    subject = f"kafka {settings.kafka_bootstrap_servers}"
    try:
        conf: dict[str, Any] = {**kafka_client_config(settings), "logger": quiet}
        admin = AdminClient(conf)
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        return [Probe(subject, "unreachable", f"no answer within {timeout:g} s: {exc}")]
    except ValueError as exc:  # librdkafka refused a setting (KAFKA_EXTRA_CONFIG, say)
        return [Probe(subject, "config", f"cannot create a client: {exc}")]
    probes = [Probe(subject, "ok", f"reachable, {len(metadata.brokers)} broker(s)")]
    for topic in settings.kafka_topics:
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            probes.append(Probe(f"topic {topic}", "config", "does not exist (KAFKA_TOPICS)"))
        else:
            probes.append(Probe(f"topic {topic}", "ok", f"{len(found.partitions)} partition(s)"))
    dlq = settings.dlq_topic
    if dlq in metadata.topics:
        probes.append(Probe(f"DLQ topic {dlq}", "ok", f"{len(metadata.topics[dlq].partitions)} partition(s)"))
    else:
        probes.append(
            Probe(
                f"DLQ topic {dlq}",
                "ok",
                f"does not exist yet; start-up creates it ({settings.dlq_topic_partitions} partitions)",
            )
        )
    return probes


def probe_registry(settings: Settings) -> list[Probe]:
    """Does the Schema Registry answer, and accept our credentials? (Lists subjects, a read.)"""
    from .codec.registry import Registry

    try:
        registry = Registry.from_settings(settings)
    except ValueError as exc:
        return [Probe("schema registry", "config", str(exc))]
    if registry is None:
        return []
    try:
        subjects = registry.client.get_subjects()
    except Exception as exc:  # classified below, as the decoder classifies them
        failure = registry.failure(exc, "listing subjects")
        verdict: Verdict = "config" if failure.reason == "registry_error" else "unreachable"
        return [Probe(registry.label, verdict, failure.message)]
    finally:
        registry.close()
    return [Probe(registry.label, "ok", f"reachable, {len(subjects)} subject(s)")]


def probe_destinations(
    destinations: Sequence[Destination], settings: Settings, environ: Mapping[str, str] = os.environ
) -> list[Probe]:
    """Each destination's passcode and region, asked of CleverTap with an empty `dryRun=1`
    upload: the request is authenticated like any other, and stores nothing twice over. The
    HTTP client is the service's (same timeouts, proxy variables, User-Agent)."""
    return asyncio.run(_probe_destinations(destinations, settings, environ))


async def _probe_destinations(
    destinations: Sequence[Destination], settings: Settings, environ: Mapping[str, str]
) -> list[Probe]:
    from .contracts import Target
    from .deliver import DeliveryOptions
    from .deliver._client import NoReply, post_upload
    from .route import upload_url

    base_url = str(settings.clevertap_base_url) if settings.clevertap_base_url else None

    async def one(client: httpx.AsyncClient, d: Destination) -> Probe:
        target = Target(
            d.account_id, upload_url(d.host, base_url, validate_only=True), d.resolve_passcode(environ)
        )
        where = base_url or d.host
        subject = f"destination {d.id} (account {d.account_id}, {where})"
        reply = await post_upload(client, target, b'{"d":[]}')
        if isinstance(reply, NoReply):
            return Probe(subject, "unreachable", f"no answer: {reply.detail}")
        if reply.status == 200:
            return Probe(subject, "ok", "passcode and region accepted")
        error = _error_text(reply.content)
        if reply.status == 401:
            return Probe(
                subject,
                "config",
                f"HTTP 401 {error}: the passcode is wrong, or the account lives in another region"
                f" than {d.region or 'EU (the default)'}",
            )
        if reply.status in (429, 500, 502, 503, 504):
            return Probe(subject, "unreachable", f"HTTP {reply.status} {error}: try again later")
        return Probe(subject, "config", f"HTTP {reply.status} {error}")

    async with DeliveryOptions.from_settings(settings).http_client() as client:
        return list(await asyncio.gather(*(one(client, d) for d in destinations)))


def _error_text(content: bytes) -> str:
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError:
        return ""
    return str(doc.get("error", "")) if isinstance(doc, dict) else ""


def exit_status(problems: Sequence[str], probes: Iterable[Probe]) -> int:
    """2 when anything is to fix in the configuration, else 1 when something did not answer."""
    worst = max((EXIT_STATUS[p.verdict] for p in probes), default=0)
    return 2 if problems else worst

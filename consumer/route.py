"""The route stage: which destination does an event go to?

The event's `destinationId` field decides, unless the Kafka record carries a `destinationId`
header (which lets a producer re-route without rewriting payloads). An id the destinations file
does not know is a poison message for this deployment: it goes to the DLQ with a reason instead
of stopping the consumer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .consent import OPEN, Gate
from .contracts import Failure, Headers, Target
from .destinations import DestinationsFile, Source
from .transform import Result, TransformConfig, partner_transform, transform

TransformFn = Callable[[Mapping[str, Any], TransformConfig], Result]
#: Which transform reads each `sources:` format.
FORMATS: dict[str, TransformFn] = {
    "rudderstack": transform,
    **{p: partner_transform(p) for p in ("appsflyer", "branch", "adjust")},
}

DESTINATION_HEADER = "destinationId"
UPLOAD_PATH = "/1/upload"
ATTRIBUTION_PATH = "/attribution"  # the partner endpoint (reference §7.2)
DRY_RUN_QUERY = "?dryRun=1"


@dataclass(frozen=True, slots=True)
class Route:
    destination_id: str
    config: TransformConfig
    target: Target
    gate: Gate = OPEN  # consent requirements, checked before the transform (consent.py)
    transform: TransformFn = transform  # what reads the topic's format (`sources:`)


@dataclass(frozen=True, slots=True)
class _Binding:
    """A `sources:` entry, ready to route with."""

    routes: Mapping[str, Route]  # every destination, with this format's transform
    destination: str | None
    path: tuple[str, ...] = ()  # destinationBy.field, split at the dots
    by_value: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Table:
    """Everything a lookup reads, swapped as one object on a reload."""

    routes: Mapping[str, Route]
    bindings: Mapping[str, _Binding]


def _bindings(sources: tuple[Source, ...], routes: Mapping[str, Route]) -> dict[str, _Binding]:
    by_format: dict[str, dict[str, Route]] = {}
    bindings = {}
    for s in sources:
        if s.format not in by_format:
            fn = FORMATS[s.format]
            by_format[s.format] = {i: replace(r, transform=fn) for i, r in routes.items()}
        by = s.destination_by
        bindings[s.topic] = _Binding(
            by_format[s.format],
            s.destination,
            tuple(by.field.split(".")) if by is not None else (),
            dict(by.map) if by is not None else {},
        )
    return bindings


def _dig(message: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = message
    for key in path:
        if type(value) is not dict:
            return None
        value = value.get(key)
    return value


def upload_url(host: str, base_url: str | None, *, validate_only: bool = False) -> str:
    """CleverTap's upload URL for a region host, or the override every region is sent to.

    `validate_only` adds `dryRun=1`: CleverTap checks the request and answers as usual without
    storing anything (clevertap-api.md §1.1; used by the dry run and `check-config --probe`).
    """
    url = base_url.rstrip("/") + UPLOAD_PATH if base_url else f"https://{host}{UPLOAD_PATH}"
    return url + DRY_RUN_QUERY if validate_only else url


def attribution_url(host: str, base_url: str | None) -> str:
    """CleverTap's partner endpoint for a region host, or the override's."""
    return base_url.rstrip("/") + ATTRIBUTION_PATH if base_url else f"https://{host}{ATTRIBUTION_PATH}"


class Router:
    """destinationId → (transform config, delivery target), resolved once at start-up."""

    def __init__(self, routes: Mapping[str, Route], sources: tuple[Source, ...] = ()) -> None:
        self._table = _Table(dict(routes), _bindings(sources, routes))
        self._sources = sources

    @classmethod
    def from_destinations(
        cls,
        destinations: DestinationsFile,
        base_url: str | None = None,
        environ: Mapping[str, str] = os.environ,
        *,
        validate_only: bool = False,
    ) -> Router:
        """Build routes, reading every passcode now so a missing secret stops start-up.
        `validate_only`: upload URLs with `dryRun=1` (the dry run's `--validate-with-clevertap`)."""
        targets: dict[Target, Target] = {}
        routes: dict[str, Route] = {}
        for d in destinations.destinations:
            # `/attribution` has no dry-run flag (§7.2): a validating run checks those installs
            # as plain events on /1/upload?dryRun=1 rather than record them for real.
            partner = None if validate_only else d.attribution_partner
            target = Target(
                d.account_id,
                upload_url(d.host, base_url, validate_only=validate_only),
                d.resolve_passcode(environ),
                # A validating dry run reports a refusal; holding would wait for ever.
                hold_on_auth_failure=d.on_auth_failure == "hold" and not validate_only,
                attribution_url=None if partner is None else attribution_url(d.host, base_url),
                account_token=None if partner is None else partner.account_token,
            )
            # Destinations that share an account, region and passcode share batches and the
            # account's concurrency budget, as CleverTap counts it.
            target = targets.setdefault(target, target)
            config = d.transform_config()
            if partner is None and config.attribution.partner_name is not None:
                config = replace(config, attribution=replace(config.attribution, partner_name=None))
            routes[d.id] = Route(d.id, config, target, d.consent_gate())
        return cls(routes, destinations.sources)

    @property
    def routes(self) -> Mapping[str, Route]:
        return self._table.routes

    @property
    def sources(self) -> tuple[Source, ...]:
        return self._sources

    def replace(self, routes: Mapping[str, Route], sources: tuple[Source, ...] | None = None) -> None:
        """Swap the whole table (a destinations reload, from another thread): one reference
        assignment, so each message is routed by the old table or the new one, never a mix."""
        if sources is not None:
            self._sources = sources
        self._table = _Table(dict(routes), _bindings(self._sources, routes))

    def route(self, message: Mapping[str, Any], headers: Headers, topic: str = "") -> Route | Failure:
        table = self._table
        binding = table.bindings.get(topic) if table.bindings else None
        if binding is None:
            return self._by_id(message, headers, table.routes)
        if binding.destination is not None:
            return binding.routes[binding.destination]
        if not binding.path:  # a rudderstack topic without a fixed destination
            return self._by_id(message, headers, binding.routes)
        value = _dig(message, binding.path)
        where = ".".join(binding.path)
        if value is None or value == "":
            return Failure("route", "missing_destination", f"payload has no {where} to route by")
        destination_id = binding.by_value.get(str(value))
        if destination_id is None:
            return Failure(
                "route", "unknown_destination", f"{where} {str(value)[:100]!r} is not in destinationBy.map"
            )
        return binding.routes[destination_id]

    @staticmethod
    def _by_id(message: Mapping[str, Any], headers: Headers, routes: Mapping[str, Route]) -> Route | Failure:
        destination_id: Any = None
        for name, value in headers:
            if name == DESTINATION_HEADER and value is not None:
                destination_id = value.decode("utf-8", "replace")
        if destination_id is None:
            destination_id = message.get("destinationId")
        if destination_id is None or destination_id == "":
            return Failure("route", "missing_destination", "event has no destinationId field or header")
        route = routes.get(str(destination_id))
        if route is None:
            return Failure(
                "route",
                "unknown_destination",
                f"destinationId {str(destination_id)[:100]!r} is not configured",
            )
        return route

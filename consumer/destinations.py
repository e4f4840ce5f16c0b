"""The destinations file: which CleverTap account each `destinationId` delivers to.

Validated completely at start-up so that a typo stops the service with a message naming the
field, instead of turning into 401s (wrong region) or silently dropped events hours later.
Passcodes come from the file, a secret file or an environment variable, never from events, and
are held as `SecretStr` so they cannot leak through a repr, a log line or an exception.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .clevertap_api import is_restricted_event
from .consent import Gate, gate_from_config
from .transform import (
    AttributionOptions,
    EventFilter,
    InAppEvent,
    Profile,
    SendPolicy,
    TransformConfig,
    UserKey,
    host_for_region,
)


class ConfigError(Exception):
    """A configuration problem, worded for the person who has to fix it."""


def _event_name(value: Any) -> Any:
    """Accept RudderStack's `{"eventName": "x"}` items as well as plain strings."""
    if isinstance(value, Mapping) and set(value) <= {"eventName"}:
        return value.get("eventName", "")
    return value


def _event_names(value: Any) -> Any:
    """The dashboard saves an empty list as `[{"eventName": ""}]`: empty names are no entries."""
    if isinstance(value, list):
        return [n for n in (_event_name(v) for v in value) if not (isinstance(n, str) and not n.strip())]
    return value


EventNames = Annotated[tuple[str, ...], BeforeValidator(_event_names)]

# RudderStack keys that only steer its device-mode SDKs: accepted so a dashboard config pastes
# in, ignored (there is no SDK in this path), and named in one start-up warning.
DEVICE_MODE_KEYS = ("useNativeSDK", "connectionMode")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Consent(_Lenient):
    consent: str = ""


class _ConsentBlock(_Lenient):
    """One provider block of RudderStack's `consentManagement`, as the dashboard saves it."""

    provider: str = ""
    consents: tuple[_Consent, ...] = ()
    resolution_strategy: Literal["and", "or", ""] | None = Field(default=None, alias="resolutionStrategy")


class _OneTrustCategory(_Lenient):
    category: str = Field(default="", alias="oneTrustCookieCategory")


class _KetchPurpose(_Lenient):
    purpose: str = ""


class _InAppEvent(BaseModel):
    """An `inAppEvents` entry: a partner event to forward (AppsFlyer's in-app postback setup)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    send: SendPolicy = "values"
    as_name: str | None = Field(default=None, alias="as", min_length=1)

    @model_validator(mode="after")
    def _charged_has_revenue(self) -> _InAppEvent:
        if self.as_name is not None and is_restricted_event(self.as_name):
            raise ValueError(f"as: {self.as_name!r} is a CleverTap system event name and cannot be uploaded")
        if self.as_name == "Charged" and self.send != "values_and_revenue":
            raise ValueError(
                "`as: Charged` needs `send: values_and_revenue` (Charged's Amount is the revenue)"
            )
        return self


class _InstallEventNames(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    organic: str = Field(default="Organic Install", min_length=1)
    inorganic: str = Field(default="Inorganic Install", min_length=1)

    @field_validator("organic", "inorganic")
    @classmethod
    def _uploadable(cls, name: str) -> str:
        if is_restricted_event(name):
            raise ValueError(f"{name!r} is a CleverTap system event name and cannot be uploaded")
        return name


class _AttributionPartner(BaseModel):
    """`attributionPartner`: send installs to CleverTap's partner endpoint `/attribution` (§7.2)
    as this whitelisted partner, with the project's account token (a secret like the passcode)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, pattern=r"\S")
    account_token: SecretStr = Field(alias="accountToken")

    @field_validator("account_token")
    @classmethod
    def _token_not_blank(cls, token: SecretStr) -> SecretStr:
        if not token.get_secret_value().strip():
            raise ValueError("is blank")
        return token


class Destination(BaseModel):
    """One CleverTap destination. Keys follow RudderStack's destination config where one exists."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1, pattern=r"\S")
    account_id: str = Field(alias="accountId", min_length=1, pattern=r"\S")
    passcode: SecretStr | None = None
    passcode_file: Path | None = Field(default=None, alias="passcodeFile")
    passcode_env: str | None = Field(default=None, alias="passcodeEnv")
    profile: Profile = Profile.DEFAULT  # before `region`: the region check depends on it
    region: str | None = None
    track_anonymous: bool = Field(default=False, alias="trackAnonymous")
    enable_object_id_mapping: bool = Field(default=False, alias="enableObjectIdMapping")
    event_filtering_option: EventFilter = Field(default=EventFilter.DISABLE, alias="eventFilteringOption")
    whitelisted_events: EventNames = Field(default=(), alias="whitelistedEvents")
    blacklisted_events: EventNames = Field(default=(), alias="blacklistedEvents")
    # HTTP 401/403 opens the account's breaker; its records then go to the DLQ as `auth_failed`
    # (redrive once fixed; the default: nothing waits) or are held until the breaker closes.
    on_auth_failure: Literal["dead_letter", "hold"] = Field(default="dead_letter", alias="onAuthFailure")
    # The project token: not used for uploads, kept (as a secret) for CleverTap's attribution API.
    account_token: SecretStr | None = Field(default=None, alias="accountToken")
    consent_management: dict[str, tuple[_ConsentBlock, ...] | None] | tuple[_ConsentBlock, ...] | None = (
        Field(default=None, alias="consentManagement")
    )
    one_trust_cookie_categories: (
        dict[str, tuple[_OneTrustCategory, ...] | None] | tuple[_OneTrustCategory, ...] | None
    ) = Field(default=None, alias="oneTrustCookieCategories")
    ketch_consent_purposes: dict[str, tuple[_KetchPurpose, ...] | None] | tuple[_KetchPurpose, ...] | None = (
        Field(default=None, alias="ketchConsentPurposes")
    )
    # Attribution (partner formats and Segment's `Install Attributed`; README, "Attribution").
    install_event_names: _InstallEventNames = Field(default=_InstallEventNames(), alias="installEventNames")
    attribution_user_key: UserKey = Field(default="objectId", alias="attributionUserKey")
    in_app_events: tuple[_InAppEvent, ...] = Field(default=(), alias="inAppEvents")
    restricted_media_sources: tuple[str, ...] = Field(default=(), alias="restrictedMediaSources")
    attribution_profile: bool = Field(default=False, alias="attributionProfile")
    attribution_partner: _AttributionPartner | None = Field(default=None, alias="attributionPartner")
    use_native_sdk: dict[str, bool | None] | bool | None = Field(default=None, alias="useNativeSDK")
    connection_mode: dict[str, str | None] | str | None = Field(default=None, alias="connectionMode")

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str | None, info: ValidationInfo) -> str | None:
        host_for_region(region, info.data.get("profile", Profile.DEFAULT))  # raises, listing the regions
        return region

    @field_validator("passcode")
    @classmethod
    def _not_blank(cls, passcode: SecretStr | None) -> SecretStr | None:
        if passcode is not None and not passcode.get_secret_value().strip():
            raise ValueError("is blank")
        return passcode

    @model_validator(mode="after")
    def _one_passcode_source(self) -> Destination:
        sources = [n for n in ("passcode", "passcode_file", "passcode_env") if getattr(self, n) is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of passcode, passcodeFile, passcodeEnv")
        return self

    @property
    def host(self) -> str:
        return host_for_region(self.region, self.profile)

    @property
    def ignored_keys(self) -> tuple[str, ...]:
        """The device-mode-only RudderStack keys this entry sets (accepted, without effect)."""
        given = {"useNativeSDK": self.use_native_sdk, "connectionMode": self.connection_mode}
        return tuple(k for k in DEVICE_MODE_KEYS if given[k] is not None)

    def consent_gate(self) -> Gate:
        """The consent requirements events must meet to reach this destination (consent.py)."""
        keys = ("consentManagement", "oneTrustCookieCategories", "ketchConsentPurposes")
        data = self.model_dump(
            by_alias=True,
            include={"consent_management", "one_trust_cookie_categories", "ketch_consent_purposes"},
        )
        return gate_from_config(*(data[k] for k in keys))

    def transform_config(self) -> TransformConfig:
        names = {
            EventFilter.ALLOW: self.whitelisted_events,
            EventFilter.DENY: self.blacklisted_events,
            EventFilter.DISABLE: (),
        }[self.event_filtering_option]
        return TransformConfig(
            account_id=self.account_id,
            region=self.region,
            track_anonymous=self.track_anonymous,
            enable_object_id_mapping=self.enable_object_id_mapping,
            profile=self.profile,
            event_filter=self.event_filtering_option,
            event_names=frozenset(names),
            attribution=AttributionOptions(
                organic_install=self.install_event_names.organic,
                inorganic_install=self.install_event_names.inorganic,
                user_key=self.attribution_user_key,
                in_app_events=tuple(InAppEvent(e.name, e.send, e.as_name) for e in self.in_app_events),
                restricted_media_sources=frozenset(
                    m.strip().casefold() for m in self.restricted_media_sources
                ),
                first_touch_profile=self.attribution_profile,
                partner_name=None if self.attribution_partner is None else self.attribution_partner.name,
            ),
        )

    def resolve_passcode(self, environ: Mapping[str, str] = os.environ) -> SecretStr:
        """Read the passcode from wherever the file says it lives."""
        if self.passcode is not None:
            return self.passcode
        if self.passcode_file is not None:
            try:
                text = self.passcode_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"destination {self.id!r}: cannot read passcodeFile {str(self.passcode_file)!r}: "
                    f"{exc.strerror}"
                ) from None
            if not text:
                raise ConfigError(
                    f"destination {self.id!r}: passcodeFile {str(self.passcode_file)!r} is empty"
                )
            return SecretStr(text)
        assert self.passcode_env is not None
        value = environ.get(self.passcode_env, "").strip()
        if not value:
            raise ConfigError(f"destination {self.id!r}: environment variable {self.passcode_env} is not set")
        return SecretStr(value)


SourceFormat = Literal["rudderstack", "appsflyer", "branch", "adjust"]


class _DestinationBy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(min_length=1, pattern=r"^[^.]+(\.[^.]+)*$")  # a dotted path into the payload
    map: dict[str, str] = Field(min_length=1)


class Source(BaseModel):
    """A `sources:` entry: what a topic carries and where its records go (the route stage)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    topic: str = Field(min_length=1)
    format: SourceFormat = "rudderstack"
    destination: str | None = Field(default=None, min_length=1)
    destination_by: _DestinationBy | None = Field(default=None, alias="destinationBy")

    @model_validator(mode="after")
    def _one_route(self) -> Source:
        if self.destination is not None and self.destination_by is not None:
            raise ValueError("give destination or destinationBy, not both")
        if self.format != "rudderstack" and self.destination is None and self.destination_by is None:
            raise ValueError(
                f"a {self.format} topic needs destination or destinationBy (its payloads name none)"
            )
        return self

    @property
    def destination_ids(self) -> tuple[str, ...]:
        if self.destination is not None:
            return (self.destination,)
        return tuple(self.destination_by.map.values()) if self.destination_by is not None else ()


class DestinationsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    destinations: tuple[Destination, ...] = Field(min_length=1)
    sources: tuple[Source, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> DestinationsFile:
        problem = duplicate_ids_problem(d.id for d in self.destinations)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _sources_route_to_destinations(self) -> DestinationsFile:
        topics = [s.topic for s in self.sources]
        repeated = sorted({t for t in topics if topics.count(t) > 1})
        if repeated:
            raise ValueError(f"sources: topic {', '.join(map(repr, repeated))} is bound more than once")
        known = {d.id for d in self.destinations}
        for i, source in enumerate(self.sources):
            unknown = sorted(set(source.destination_ids) - known)
            if unknown:
                raise ValueError(
                    f"sources[{i}] ({source.topic}): unknown destination {', '.join(map(repr, unknown))}"
                )
        return self


def duplicate_ids_problem(ids: Iterable[object]) -> str | None:
    """What is wrong when ids repeat (each named once), or None."""
    seen: set[object] = set()
    dups: list[object] = []
    for i in ids:
        if i in seen and i not in dups:
            dups.append(i)
        seen.add(i)
    return f"duplicate destination id {', '.join(map(repr, dups))}" if dups else None


def _describe(err: ValidationError) -> str:
    return "; ".join(describe_errors(err))


def describe_errors(err: ValidationError) -> list[str]:
    """One `where: what` line per problem pydantic found (all of them, not the first)."""
    errors = err.errors()
    # A failing entry also makes the list look empty ("at least 1 item"): say only the cause.
    if any(len(e["loc"]) > 1 for e in errors):
        errors = [e for e in errors if not (e["type"] == "too_short" and len(e["loc"]) == 1)]
    lines = []
    for e in errors:
        where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in e["loc"]).replace(".[", "[")
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where or '(top level)'}: {msg}")
    return lines


def require_subscribed(destinations: DestinationsFile, path: Path, topics: Iterable[str]) -> None:
    """A `sources:` binding for a topic the consumer does not subscribe to would never see a
    record: refuse it (at start-up, and on reload, which keeps the previous file)."""
    subscribed = set(topics)
    unsubscribed = [s.topic for s in destinations.sources if s.topic not in subscribed]
    if unsubscribed:
        raise ConfigError(
            f"{path}: sources name topics KAFKA_TOPICS does not list: {', '.join(unsubscribed)}"
        )


def parse_destinations(data: Any, source: str = "destinations") -> DestinationsFile:
    """Validate already-parsed data; the error names the offending entry and key."""
    try:
        return DestinationsFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a destinations file") from None


def load_destinations(path: Path) -> DestinationsFile:
    """Load a JSON or YAML destinations file (JSON is valid YAML, so one parser reads both)."""
    return parse_destinations(read_destinations_data(path), str(path))


def read_destinations_data(path: Path) -> Any:
    """The file's parsed content, not yet validated."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read destinations file {str(path)!r}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    return parse_yaml_text(text, str(path))


def parse_yaml_text(text: str, source: str) -> Any:
    """YAML (or JSON) text → data; the error gives line, column and what is wrong, never the
    text around it (that line may hold an inline passcode)."""
    try:
        loader = yaml.SafeLoader(text)  # reads the text already: unprintable characters raise here
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid JSON or YAML: {_yaml_problem(exc)}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node)
        if expanded > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"{source}: its YAML aliases expand to more than {MAX_EXPANDED_NODES:,} values"
                " (an alias bomb?); write the values out or use fewer aliases"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid JSON or YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a destinations file") from None
    finally:
        loader.dispose()


#: How many values a destinations file may hold once its YAML aliases are expanded. A "billion
#: laughs" file (aliases of aliases) is a few hundred bytes that expand to billions of values:
#: PyYAML builds it as shared objects, but validating, logging or printing it walks every copy.
#: A real file with thousands of destinations stays far below this.
MAX_EXPANDED_NODES = 1_000_000


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes the document has with every alias written out (capped just above the
    limit), counted without expanding: each distinct node once, iteratively (an alias graph can
    be deep). A node that contains itself counts as too many."""
    too_many = MAX_EXPANDED_NODES + 1
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = _children(node)
        if children_done:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(too_many, 1 + sum(sizes[id(c)] for c in children))
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            return too_many  # an alias to an enclosing node: infinitely deep
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = str(getattr(exc, "problem", None) or type(exc).__name__)
    # Quoted text in a problem comes from the file (a token, an alias name): keep only short ones.
    problem = re.sub(r"'([^']{5,})'", "'…'", problem)
    if mark is None:
        return problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"

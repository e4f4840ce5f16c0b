"""Values that cross the transform boundary.

The transform is a pure function, so everything it needs arrives in a `TransformConfig` and
everything it decides leaves in an `Accepted`, `Rejected` or `Filtered` value. Nothing here
holds a secret: the passcode never reaches the transform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class Profile(StrEnum):
    """Which behaviour the transform follows.

    `rudderstack` reproduces RudderStack's CleverTap destination byte for byte, quirks included,
    so users can switch without a visible change. `default` fixes the quirks that lose or
    corrupt data (see README, "Differences from RudderStack").
    """

    DEFAULT = "default"
    RUDDERSTACK = "rudderstack"


class EventFilter(StrEnum):
    """RudderStack's `eventFilteringOption` vocabulary, applied here in cloud mode too."""

    DISABLE = "disable"
    ALLOW = "whitelistedEvents"
    DENY = "blacklistedEvents"


SendPolicy = Literal["none", "values", "values_and_revenue"]
UserKey = Literal["objectId", "identity"]


@dataclass(frozen=True, slots=True)
class InAppEvent:
    """One `inAppEvents` entry: which partner event to forward, with what, under which name."""

    name: str
    send: SendPolicy = "values"
    as_name: str | None = None  # e.g. "Charged"; None keeps the partner's name


@dataclass(frozen=True, slots=True)
class AttributionOptions:
    """The attribution part of a destination (README, "Attribution"); used by _attribution.py."""

    organic_install: str = "Organic Install"
    inorganic_install: str = "Inorganic Install"
    user_key: UserKey = "objectId"
    in_app_events: tuple[InAppEvent, ...] = ()
    restricted_media_sources: frozenset[str] = frozenset()  # case-folded
    first_touch_profile: bool = False
    # `attributionPartner.name`: installs matched by CleverTap ID go to CleverTap's partner
    # endpoint `/attribution` (reference §7.2) as `attribution` records instead of /1/upload.
    partner_name: str | None = None


@dataclass(frozen=True, slots=True)
class TransformConfig:
    """The non-secret part of a destination that decides how events map to records."""

    account_id: str
    region: str | None = None
    track_anonymous: bool = False
    enable_object_id_mapping: bool = False
    profile: Profile = Profile.DEFAULT
    event_filter: EventFilter = EventFilter.DISABLE
    event_names: frozenset[str] = frozenset()
    attribution: AttributionOptions = AttributionOptions()


RecordKind = Literal["event", "profile", "token", "attribution"]


@dataclass(frozen=True, slots=True)
class Record:
    """One element of CleverTap's `{"d": [...]}` upload body.

    `kind` lets the batcher apply CleverTap's smaller cap for device tokens (100 per request)
    without looking inside `data`. An `attribution` record is not an upload record: its `data`
    is the non-secret query parameters of one `/attribution` request (sent alone).
    """

    kind: RecordKind
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Fix:
    """A change the default profile made so CleverTap accepts the record instead of rejecting it.

    `kind` is a small fixed vocabulary (it becomes a metric label); `field` names the key that
    was changed and is for logs and DLQ-free auditing only.
    """

    kind: str
    field: str
    action: Literal["fixed", "dropped"]


@dataclass(frozen=True, slots=True)
class Accepted:
    """Records to upload, in order, plus what pre-flight checks changed on the way."""

    records: tuple[Record, ...]
    fixes: tuple[Fix, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event that cannot become a valid record.

    `status` and `message` follow RudderStack's error contract (HTTP-like status, exact text);
    `reason` is a short fixed label for metrics and the DLQ `reason` header.
    """

    status: int
    message: str
    reason: str


@dataclass(frozen=True, slots=True)
class Filtered:
    """An event skipped on purpose, not an error: the destination's allow/deny list
    (`event_filter`) or an attribution rule (`_attribution.ATTRIBUTION_FILTER_REASONS`)."""

    event_name: str
    reason: str = "event_filter"


Result = Accepted | Rejected | Filtered

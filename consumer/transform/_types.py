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


RecordKind = Literal["event", "profile", "token"]


@dataclass(frozen=True, slots=True)
class Record:
    """One element of CleverTap's `{"d": [...]}` upload body.

    `kind` lets the batcher apply CleverTap's smaller cap for device tokens (100 per request)
    without looking inside `data`.
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
    """An event the destination's allow/deny list says to skip on purpose: not an error."""

    event_name: str


Result = Accepted | Rejected | Filtered

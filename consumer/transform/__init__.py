"""The transform stage: one analytics event in, CleverTap records (or a reason) out.

Pure by contract: no I/O, no clock, no globals. The same input always gives the same output,
which is what lets the service retry, replay and redrive without surprises.
"""

from ._attribution import ATTRIBUTION_FILTER_REASONS, Partner, partner_transform
from ._regions import DEFAULT_HOST, REGION_CHOICES, host_for_region
from ._transform import transform
from ._types import (
    Accepted,
    AttributionOptions,
    EventFilter,
    Filtered,
    Fix,
    InAppEvent,
    Profile,
    Record,
    RecordKind,
    Rejected,
    Result,
    SendPolicy,
    TransformConfig,
    UserKey,
)
from ._vocab import FIX_KINDS, REJECT_REASONS

__all__ = [
    "ATTRIBUTION_FILTER_REASONS",
    "DEFAULT_HOST",
    "FIX_KINDS",
    "REGION_CHOICES",
    "REJECT_REASONS",
    "Accepted",
    "AttributionOptions",
    "EventFilter",
    "Filtered",
    "Fix",
    "InAppEvent",
    "Partner",
    "Profile",
    "Record",
    "RecordKind",
    "Rejected",
    "Result",
    "SendPolicy",
    "TransformConfig",
    "UserKey",
    "host_for_region",
    "partner_transform",
    "transform",
]

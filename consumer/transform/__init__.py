"""The transform stage: one analytics event in, CleverTap records (or a reason) out.

Pure by contract: no I/O, no clock, no globals. The same input always gives the same output,
which is what lets the service retry, replay and redrive without surprises.
"""

from ._regions import DEFAULT_HOST, REGION_CHOICES, host_for_region
from ._transform import transform
from ._types import (
    Accepted,
    EventFilter,
    Filtered,
    Fix,
    Profile,
    Record,
    RecordKind,
    Rejected,
    Result,
    TransformConfig,
)
from ._vocab import FIX_KINDS, REJECT_REASONS

__all__ = [
    "DEFAULT_HOST",
    "FIX_KINDS",
    "REGION_CHOICES",
    "REJECT_REASONS",
    "Accepted",
    "EventFilter",
    "Filtered",
    "Fix",
    "Profile",
    "Record",
    "RecordKind",
    "Rejected",
    "Result",
    "TransformConfig",
    "host_for_region",
    "transform",
]

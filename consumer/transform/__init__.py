"""The transform stage: one analytics event in, CleverTap records (or a reason) out.

Pure by contract: no I/O, no clock, no globals. The same input always gives the same output,
which is what lets the service retry, replay and redrive without surprises.
"""

from ._regions import DEFAULT_HOST, REGION_CHOICES, host_for_region
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

__all__ = [
    "DEFAULT_HOST",
    "REGION_CHOICES",
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
]

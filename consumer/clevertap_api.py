"""What CleverTap's `/1/upload` accepts (clevertap-api.md §3), stated once.

The transform's pre-flight checks keep records inside these limits, the batcher sizes requests by
them, and the fake server enforces them. One definition means the fake cannot drift into
accepting what the transform was written to avoid, or the other way round.
"""

from __future__ import annotations

from typing import Final

MAX_RECORDS: Final = 1000
MAX_TOKEN_RECORDS: Final = 100
MAX_EVENT_PROPERTIES: Final = 100
MAX_KEY_BYTES: Final = 120
MAX_VALUE_BYTES: Final = 512

# "Cannot be uploaded" system events: CleverTap answers 513 for each.
RESTRICTED_EVENT_NAMES: Final = (
    "Notification Sent",
    "Notification Viewed",
    "Notification Clicked",
    "Notification Delivered",
    "Notification Replied",
    "UTM Visited",
    "App Launched",
    "App Uninstalled",
    "App Version Changed",
    "Stayed",
    "Reply Sent",
    "Experiment Rendered",
    "Reachable By",
    "Identity Reset",
    "Identity Set",
    "Identity Error",
)


def event_name_key(name: str) -> str:
    """CleverTap compares event names without case or white space (`SignUp` = `sign up`)."""
    return "".join(name.split()).casefold()


RESTRICTED_EVENT_KEYS: Final = frozenset(map(event_name_key, RESTRICTED_EVENT_NAMES))


def is_restricted_event(name: str) -> bool:
    return event_name_key(name) in RESTRICTED_EVENT_KEYS

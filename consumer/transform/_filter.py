"""Per-destination event filtering, with RudderStack's `eventFilteringOption` vocabulary.

RudderStack applies its allow/deny lists in the device-mode SDKs only; this service has no SDK
in the path, so the lists apply here, to track events (identify, page, screen and alias always
pass). The match is exact and case-sensitive on the event name with surrounding whitespace
trimmed; a number as event name is matched by its text. An event without a usable name is not
filtered: the transform rejects it with a clearer reason than "filtered".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._js import to_string
from ._types import EventFilter, Filtered, TransformConfig


def filtered(message: Mapping[str, Any], config: TransformConfig) -> Filtered | None:
    """`Filtered(name)` when the destination's list says to skip this track event."""
    event = message.get("event")
    if isinstance(event, str):
        name = event.strip()
    elif type(event) is int or type(event) is float:
        name = to_string(event)
    else:
        return None
    if not name:
        return None
    listed = name in config.event_names
    if config.event_filter is EventFilter.ALLOW:
        return None if listed else Filtered(name)
    if config.event_filter is EventFilter.DENY:
        return Filtered(name) if listed else None
    return None

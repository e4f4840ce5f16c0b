"""Dispatch: which message type becomes which record, in which profile."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._attribution import INSTALL_ATTRIBUTED, install_attributed
from ._events import event_default, event_rudderstack
from ._filter import filtered
from ._identify import alias_default, alias_rudderstack, identify_default, identify_rudderstack
from ._js import truthy
from ._types import EventFilter, Profile, Result, TransformConfig
from ._vocab import REJECT_MISSING_TYPE, REJECT_NOT_AN_OBJECT, REJECT_TOO_DEEP, REJECT_UNSUPPORTED_TYPE

_KINDS: Final = {k: k for k in ("identify", "track", "page", "screen", "alias")}
_RUDDERSTACK: Final = Profile.RUDDERSTACK
_NO_FILTER: Final = EventFilter.DISABLE


def transform(message: Mapping[str, Any], config: TransformConfig) -> Result:
    """Turn one RudderStack-spec message into CleverTap records, a rejection, or a skip.

    Pure: the result depends only on the arguments, and neither is modified.
    """
    try:
        if type(message) is not dict and not isinstance(message, Mapping):  # parsed JSON may be anything
            return REJECT_NOT_AN_OBJECT  # type: ignore[unreachable]
        message_type = message.get("type")
        if type(message_type) is not str or not message_type:
            if not truthy(message_type):
                return REJECT_MISSING_TYPE
            # RudderStack fails on `.toLowerCase()` of a non-string here; no type is supported.
            return REJECT_UNSUPPORTED_TYPE
        kind = _KINDS.get(message_type) or _KINDS.get(message_type.lower())
        if kind is None:
            return REJECT_UNSUPPORTED_TYPE
        if kind == "track" and config.event_filter is not _NO_FILTER:
            skip = filtered(message, config)
            if skip is not None:
                return skip
        if config.profile is _RUDDERSTACK:
            if kind == "identify":
                return identify_rudderstack(message, config.enable_object_id_mapping)
            if kind == "alias":
                return alias_rudderstack(message)
            return event_rudderstack(message, kind, config.track_anonymous, config.enable_object_id_mapping)
        if kind == "identify":
            return identify_default(message, config.enable_object_id_mapping)
        if kind == "track" and message.get("event") == INSTALL_ATTRIBUTED:
            return install_attributed(message, config)
        if kind == "alias":
            return alias_default(message)
        return event_default(message, kind, config.track_anonymous, config.enable_object_id_mapping)
    except RecursionError:
        # Nested values are walked recursively; JSON parsers allow deeper nesting (orjson: 1024
        # levels) than Python's stack. Such an event is refused, not allowed to stop the consumer.
        return REJECT_TOO_DEEP

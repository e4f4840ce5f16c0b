"""Which user a record belongs to: `identity` (our user id) or `objectId` (CleverTap's device id).

RudderStack looks for a user id in `userId`, `traits.userId`, `traits.id`, `context.traits.userId`,
`context.traits.id` and, for the "full" variant, `anonymousId`, taking the first value that is
truthy, `0` or `false`. The value keeps its JSON type (a numeric id stays a number).

The default profile takes the first *usable* value instead: a non-blank string or a number.
`false`, objects and blank strings are not identifiers CleverTap can store, and picking one of them
over a real id further down the list would send the record to the wrong profile (or to none).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ._js import present


def usable(value: Any) -> bool:
    """An identifier CleverTap can key a profile on: a non-blank string or a finite number."""
    t = type(value)
    if t is str:
        return bool(value) and not value.isspace()
    if t is int:
        return True
    if t is float:
        return math.isfinite(value)
    return False


def _first(message: Mapping[str, Any], with_anonymous: bool, accept: Callable[[Any], bool]) -> Any:
    value = message.get("userId")
    if accept(value):
        return value
    traits = message.get("traits")
    if type(traits) is dict:
        value = traits.get("userId")
        if accept(value):
            return value
        value = traits.get("id")
        if accept(value):
            return value
    context = message.get("context")
    if type(context) is dict:
        ctx_traits = context.get("traits")
        if type(ctx_traits) is dict:
            value = ctx_traits.get("userId")
            if accept(value):
                return value
            value = ctx_traits.get("id")
            if accept(value):
                return value
    if with_anonymous:
        value = message.get("anonymousId")
        if accept(value):
            return value
    return None


def user_id_full(message: Mapping[str, Any]) -> Any:
    """RudderStack's `userId` lookup (anonymousId last); None when nothing counts."""
    return _first(message, True, present)


def user_id_only(message: Mapping[str, Any]) -> Any:
    """RudderStack's `userIdOnly` lookup (never anonymousId); None when nothing counts."""
    return _first(message, False, present)


def usable_user_id_full(message: Mapping[str, Any]) -> Any:
    """The default profile's user id, anonymousId last; None when there is no usable one."""
    return _first(message, True, usable)


def usable_user_id_only(message: Mapping[str, Any]) -> Any:
    """The default profile's known-user id (never anonymousId); None when there is no usable one."""
    return _first(message, False, usable)

"""The default profile's pre-flight checks against CleverTap's documented limits.

CleverTap rejects a whole record for one bad field (a 600-byte value, a phone without `+`, a
101st property), and RudderStack turns such a reply into an aborted batch. Fixing or dropping the
one field here keeps the rest of the record, and each change is reported as a `Fix` so it is
counted (metric `transform_fixes{kind,action}`) rather than silent.

Limits (clevertap-api.md §3): keys ≤ 120 bytes, values ≤ 512 bytes, ≤ 100 properties per
event, `Phone` in E.164, restricted system event names, Charged `Items` all objects.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ..clevertap_api import (
    MAX_EVENT_PROPERTIES,
    MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
    RESTRICTED_EVENT_KEYS,
)
from ._types import Fix
from ._vocab import (
    CHARGED_ITEMS,
    KEY_TOO_LONG,
    PHONE_FORMAT,
    TOO_MANY_PROPERTIES,
    VALUE_TOO_LONG,
    fix,
)

# A string of n characters has at most 4n UTF-8 bytes: shorter ones need no encoding to check.
SAFE_KEY_CHARS: Final = MAX_KEY_BYTES // 4
SAFE_VALUE_CHARS: Final = MAX_VALUE_BYTES // 4

_RESTRICTED_INITIALS: Final = frozenset(k[0] for k in RESTRICTED_EVENT_KEYS)


def may_be_restricted(name: str) -> bool:
    """A cheap test on the first character before the full comparison, which folds case and
    drops white space (so a leading space may hide any initial)."""
    initial = name[:1]
    return initial.casefold()[:1] in _RESTRICTED_INITIALS or initial.isspace()


def key_fits(key: str) -> bool:
    return len(key) <= SAFE_KEY_CHARS or len(key.encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES


def value_fits(value: str) -> bool:
    return len(value) <= SAFE_VALUE_CHARS or len(value.encode("utf-8", "surrogatepass")) <= MAX_VALUE_BYTES


def truncate_utf8(value: str, limit: int = MAX_VALUE_BYTES) -> str:
    """The longest prefix of `value` that fits in `limit` UTF-8 bytes, never cutting a character."""
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return value
    return raw[:limit].decode("utf-8", "ignore")


def checked_value(key: str, value: Any, stringified: bool, fixes: list[Fix]) -> tuple[bool, Any]:
    """Fit one top-level value into CleverTap's value limit: (keep?, value).

    Plain strings are cut at a character boundary (the start of a long text is still useful);
    the JSON text of an object or array is dropped, because a cut one is no longer JSON.
    """
    if type(value) is not str or value_fits(value):
        return True, value
    if stringified:
        fixes.append(fix(VALUE_TOO_LONG, key, dropped=True))
        return False, None
    fixes.append(fix(VALUE_TOO_LONG, key, dropped=False))
    return True, truncate_utf8(value)


def drop_long_key(key: str, fixes: list[Fix]) -> bool:
    """True (and a fix recorded) when `key` exceeds CleverTap's key limit."""
    if key_fits(key):
        return False
    fixes.append(fix(KEY_TOO_LONG, key, dropped=True))
    return True


def limit_properties(data: dict[str, Any], fixes: list[Fix]) -> dict[str, Any]:
    """Keep the first 100 properties in event order; the rest are dropped and reported."""
    if len(data) <= MAX_EVENT_PROPERTIES:
        return data
    items = list(data.items())
    for key, _ in items[MAX_EVENT_PROPERTIES:]:
        fixes.append(fix(TOO_MANY_PROPERTIES, key, dropped=True))
    return dict(items[:MAX_EVENT_PROPERTIES])


_PHONE_NOISE: Final = re.compile(r"[\s\-().\u00a0]")
_E164: Final = re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII)


def e164(value: Any) -> str | None:
    """`value` as an E.164 number, allowing only unambiguous repairs: spaces, dashes, dots and
    parentheses removed, a leading international `00` read as `+`. No country code is guessed."""
    if type(value) is not str:
        return None
    phone = _PHONE_NOISE.sub("", value)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    return phone if _E164.fullmatch(phone) else None


def checked_phone(value: Any, fixes: list[Fix]) -> Any:
    """The `Phone` to send, or None to drop it (CleverTap rejects the profile otherwise, 516)."""
    if type(value) is str and _E164.fullmatch(value):
        return value
    phone = e164(value)
    fixes.append(fix(PHONE_FORMAT, "Phone", dropped=phone is None))
    return phone


def object_items(items: list[Any], fixes: list[Fix]) -> list[Any]:
    """Charged `Items` with every non-object entry dropped (CleverTap wants a list of objects)."""
    if all(type(item) is dict for item in items):
        return items
    kept = []
    for i, item in enumerate(items):
        if type(item) is dict:
            kept.append(item)
        else:
            fixes.append(fix(CHARGED_ITEMS, f"Items[{i}]", dropped=True))
    return kept

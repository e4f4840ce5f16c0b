"""track / page / screen → a CleverTap `event` record; Order Completed → `Charged`.

evtName: track uses `event` as is; page and screen render the first of `event`,
`properties.event`, `name`, `properties.name` as `Web Page Viewed: <name>` / `Screen Viewed:
<name>` (just the prefix when there is none). RudderStack renders through a Handlebars template,
so the name is HTML-escaped there; the default profile keeps the name as written.

evtData: `properties` with top-level objects/arrays as JSON text (category-(un)subscribe and
Charged `Items` stay objects). Null values inside evtData are kept, as RudderStack keeps them.

RudderStack's Order Completed check sits in the code path shared by track, page and screen, so a
page or screen message whose `event` says "order completed" is a Charged event there too; the
default profile only treats track events as purchases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

import orjson

from ..clevertap_api import MAX_EVENT_PROPERTIES, is_restricted_event
from ._identify import KEPT_AS_OBJECTS
from ._identity import usable, usable_user_id_only, user_id_full, user_id_only
from ._js import html_escape, own_entries, present, set_path, stringify, to_string, trim, truthy
from ._preflight import (
    SAFE_KEY_CHARS,
    SAFE_VALUE_CHARS,
    checked_value,
    drop_long_key,
    limit_properties,
    may_be_restricted,
    object_items,
)
from ._profile_values import checked_amount, flat_item
from ._results import new_accepted, new_record
from ._ts import default_ts, iso_date_value, rfc3339_seconds, rudderstack_ts
from ._types import Accepted, Fix, Rejected
from ._vocab import (
    NOT_AN_OBJECT_FIELD,
    REJECT_ANONYMOUS,
    REJECT_BAD_PRODUCTS,
    REJECT_EVENT_NAME_NOT_TEXT,
    REJECT_EVENT_WITHOUT_ID,
    REJECT_MISSING_EVENT,
    REJECT_MISSING_PROPERTIES,
    REJECT_NO_OBJECT_ID_OR_USER,
    fix,
    restricted_event,
)

PREFIXES: Final = {"page": "Web Page Viewed", "screen": "Screen Viewed"}
_CHARGED_SOURCES: Final = frozenset({"checkout_id", "revenue", "products", "ts"})
_MISSING: Final[Any] = object()


def _view_name(message: Mapping[str, Any], properties: Any) -> Any:
    """First of event, properties.event, name, properties.name that counts; None if none."""
    value = message.get("event")
    if present(value):
        return value
    if type(properties) is dict:
        value = properties.get("event")
        if present(value):
            return value
    value = message.get("name")
    if present(value):
        return value
    if type(properties) is dict:
        value = properties.get("name")
        if present(value):
            return value
    return None


def _handlebars_text(value: Any) -> str:
    """What `{{value}}` prints before escaping: "" for null, `String(value)` otherwise."""
    return "" if value is None else to_string(value)


def _products(value: Any) -> Any:
    """Charged Items after RudderStack's JSON round trip (a string is parsed); _MISSING if the
    text is not JSON."""
    if type(value) is str:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return _MISSING
    return value


def _bad_products(items: Any) -> bool:
    if type(items) is not list or not items:
        return True
    first = items[0]
    return not (first is None or type(first) is dict or type(first) is list)  # typeof null is "object"


# ---------------------------------------------------------------------------------------------
# rudderstack profile


def _stringified(data: Any, charged: bool) -> dict[str, Any] | Rejected:
    out: dict[str, Any] = {}
    for key, value in data.items() if type(data) is dict else own_entries(data):
        if (type(value) is dict or type(value) is list) and key not in KEPT_AS_OBJECTS:
            out[key] = value if charged and key == "Items" else stringify(value)
        else:
            out[key] = value
    if charged and truthy(out.get("Items")):
        items = _products(out["Items"])
        if items is _MISSING or _bad_products(items):
            return REJECT_BAD_PRODUCTS
        out["Items"] = items
    return out


def event_rudderstack(
    message: Mapping[str, Any], kind: str, track_anonymous: bool, object_id_mapping: bool
) -> Accepted | Rejected:
    if not track_anonymous and not truthy(user_id_only(message)):
        return REJECT_ANONYMOUS
    properties = message.get("properties")
    event = message.get("event")
    if to_string(event).lower() == "order completed":
        data: Any = {}
        if type(properties) is dict:
            for source, target in (
                ("checkout_id", "Charged ID"),
                ("revenue", "Amount"),
                ("products", "Items"),
            ):
                value = properties.get(source)
                if present(value):
                    data[target] = value
        if truthy(properties):
            entries = properties.items() if type(properties) is dict else own_entries(properties)
            for key, value in entries:
                if key not in _CHARGED_SOURCES:
                    set_path(data, key, value)
        raw_ts = properties.get("ts") if type(properties) is dict else None
        name: Any = "Charged"
    else:
        if kind == "track":
            if not present(event):
                return REJECT_MISSING_EVENT
            name = event
        else:
            view = _view_name(message, properties)
            prefix = PREFIXES[kind]
            name = prefix if view is None else trim(f"{prefix}: {html_escape(_handlebars_text(view))}")
        if properties is None:
            data = {}
        elif present(properties):
            data = properties
        else:
            return REJECT_MISSING_PROPERTIES
        raw_ts = properties.get("ts") if type(properties) is dict else None
        if not present(raw_ts):
            raw_ts = None
    if truthy(data):
        converted = _stringified(data, name == "Charged")
        if type(converted) is Rejected:
            return converted
        data = converted
    record = {"evtName": name, "evtData": data}
    if raw_ts is not None:
        record["ts"] = rudderstack_ts(raw_ts)  # NaN → null, kept (it is not pruned in RudderStack)
    record["type"] = "event"
    if object_id_mapping:
        anonymous_id = message.get("anonymousId")
        if truthy(anonymous_id):
            record["objectId"] = anonymous_id
        else:
            user_id = user_id_only(message)
            if not truthy(user_id):
                return REJECT_NO_OBJECT_ID_OR_USER
            record["identity"] = user_id
    else:
        user_id = user_id_full(message)
        if user_id is not None:
            record["identity"] = user_id
    return new_accepted((new_record("event", record),))


# ---------------------------------------------------------------------------------------------
# default profile


_NEEDS_A_LOOK: Final = frozenset({str, dict, list})


def _checked_data(data: dict[str, Any], charged: bool, fixes: list[Fix]) -> dict[str, Any]:
    """evtData with JSON text for nested values, `$D_` dates, and every key/value within limits.

    Most values are short scalars that pass unchanged, so the data is copied at C speed and the
    loop only rewrites what needs it.
    """
    out = data.copy()
    for key, value in data.items():
        if len(key) > SAFE_KEY_CHARS and drop_long_key(key, fixes):
            del out[key]
            continue
        if type(value) not in _NEEDS_A_LOOK:
            continue
        if type(value) is str:
            if len(value) < 10:
                continue
            if value[4] == "-":
                date = iso_date_value(value)
                if date is not None:
                    out[key] = date
                    continue
            if len(value) > SAFE_VALUE_CHARS:
                keep, cut = checked_value(key, value, False, fixes)
                if keep:
                    out[key] = cut
                else:
                    out.pop(key, None)
        else:
            if (charged and key == "Items") or key in KEPT_AS_OBJECTS:
                continue
            text = stringify(value)
            if len(text) > SAFE_VALUE_CHARS:
                keep, text = checked_value(key, text, True, fixes)
                if not keep:
                    del out[key]
                    continue
            out[key] = text
    return out if len(out) <= MAX_EVENT_PROPERTIES else limit_properties(out, fixes)


def _event_name_default(event: Any) -> str | Rejected:
    t = type(event)
    if t is str:
        return event if event and not event.isspace() else REJECT_MISSING_EVENT
    if event is None:
        return REJECT_MISSING_EVENT
    if t is int or t is float:
        return to_string(event)
    return REJECT_EVENT_NAME_NOT_TEXT


def _charged_data(properties: dict[str, Any], fixes: list[Fix]) -> dict[str, Any] | Rejected:
    data: dict[str, Any] = {}
    for source, target in (("checkout_id", "Charged ID"), ("revenue", "Amount")):
        value = properties.get(source)
        if present(value):
            if target == "Amount":
                value = checked_amount(value, fixes)
                if value is None:
                    continue
            data[target] = value
    products = properties.get("products")
    if present(products):
        items = _products(products)
        if type(items) is not list:
            return REJECT_BAD_PRODUCTS
        items = object_items(items, fixes)
        if not items:
            return REJECT_BAD_PRODUCTS
        data["Items"] = [flat_item(item, i, fixes) for i, item in enumerate(items)]
    for key, value in properties.items():
        if key not in _CHARGED_SOURCES:
            set_path(data, key, value)
    return data


def event_default(
    message: Mapping[str, Any], kind: str, track_anonymous: bool, object_id_mapping: bool
) -> Accepted | Rejected:
    known_user = message.get("userId")
    if type(known_user) is not str or not known_user or known_user.isspace():
        known_user = usable_user_id_only(message)
    if known_user is None and not track_anonymous:
        return REJECT_ANONYMOUS
    fixes: list[Fix] = []
    properties = message.get("properties")
    if type(properties) is not dict:
        if properties is not None:
            fixes.append(fix(NOT_AN_OBJECT_FIELD, "properties", dropped=True))
        properties = {}
    charged = False
    if kind == "track":
        event = message.get("event")
        if type(event) is str and event and not event.isspace():
            name = event
        else:
            checked = _event_name_default(event)
            if type(checked) is Rejected:
                return checked
            name = cast(str, checked)
        if name.lower() == "order completed":
            charged = True
            name = "Charged"
        elif may_be_restricted(name) and is_restricted_event(name):
            return restricted_event(name)
    else:
        view = _view_name(message, properties)
        prefix = PREFIXES[kind]
        name = prefix if view is None else trim(f"{prefix}: {_handlebars_text(view)}")
    if charged:
        charged_data = _charged_data(properties, fixes)
        if type(charged_data) is Rejected:
            return charged_data
        data = cast(dict[str, Any], charged_data)
    else:
        data = properties
    evt_data = _checked_data(data, charged, fixes)
    own_ts = properties.get("ts")
    ts = rfc3339_seconds(message.get("timestamp")) if own_ts is None else None
    if ts is None:
        ts = default_ts(message, fixes, ("properties.ts", own_ts))
    if ts is not None:
        if known_user is not None and not object_id_mapping:  # the usual event, in one go
            record = {"evtName": name, "evtData": evt_data, "ts": ts, "type": "event", "identity": known_user}
            return new_accepted((new_record("event", record),), fixes)
        record = {"evtName": name, "evtData": evt_data, "ts": ts, "type": "event"}
    else:
        record = {"evtName": name, "evtData": evt_data, "type": "event"}
    if object_id_mapping:
        anonymous_id = message.get("anonymousId")
        if usable(anonymous_id):
            record["objectId"] = anonymous_id
        elif known_user is not None:
            record["identity"] = known_user
        else:
            return REJECT_NO_OBJECT_ID_OR_USER
    elif known_user is not None:
        record["identity"] = known_user
    else:
        anonymous_id = message.get("anonymousId")
        if not usable(anonymous_id):
            return REJECT_EVENT_WITHOUT_ID
        record["identity"] = anonymous_id
    return new_accepted((new_record("event", record),), fixes)

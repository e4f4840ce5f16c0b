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
from typing import Any, Final

import orjson

from ._identify import KEPT_AS_OBJECTS, first_timestamp
from ._identity import usable, usable_user_id_full, usable_user_id_only, user_id_full, user_id_only
from ._js import html_escape, own_entries, present, set_path, stringify, to_string, trim, truthy
from ._preflight import checked_value, drop_long_key, is_restricted_event, limit_properties, object_items
from ._ts import iso_date_value, rudderstack_ts
from ._types import Accepted, Fix, Record, Rejected
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
    record: dict[str, Any]
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
    return Accepted((Record("event", record),))


# ---------------------------------------------------------------------------------------------
# default profile


def _checked_data(data: dict[str, Any], charged: bool, fixes: list[Fix]) -> dict[str, Any]:
    """evtData with JSON text for nested values, `$D_` dates, and every key/value within limits."""
    out: dict[str, Any] = {}
    for key, original in data.items():
        if drop_long_key(key, fixes):
            continue
        value = original
        t = type(value)
        if t is str:
            if len(value) >= 10 and value[4] == "-":
                value = iso_date_value(value) or value
            if len(value) > 128:
                keep, value = checked_value(key, value, False, fixes)
                if not keep:
                    continue
        elif t is dict or t is list:
            if (charged and key == "Items") or key in KEPT_AS_OBJECTS:
                out[key] = value
                continue
            value = stringify(value)
            if len(value) > 128:
                keep, value = checked_value(key, value, True, fixes)
                if not keep:
                    continue
        out[key] = value
    return limit_properties(out, fixes)


def _event_name_default(event: Any) -> str | Rejected:
    t = type(event)
    if t is str:
        return event if event.strip() else REJECT_MISSING_EVENT
    if event is None:
        return REJECT_MISSING_EVENT
    if t is int or t is float:
        return to_string(event)
    return REJECT_EVENT_NAME_NOT_TEXT


def event_default(
    message: Mapping[str, Any], kind: str, track_anonymous: bool, object_id_mapping: bool
) -> Accepted | Rejected:
    if not track_anonymous and usable_user_id_only(message) is None:
        return REJECT_ANONYMOUS
    fixes: list[Fix] = []
    properties = message.get("properties")
    if type(properties) is not dict:
        if properties is not None:
            fixes.append(fix(NOT_AN_OBJECT_FIELD, "properties", dropped=True))
        properties = {}
    charged = False
    if kind == "track":
        name = _event_name_default(message.get("event"))
        if type(name) is Rejected:
            return name
        assert isinstance(name, str)
        if name.lower() == "order completed":
            charged = True
            name = "Charged"
        elif is_restricted_event(name):
            return restricted_event(name)
    else:
        view = _view_name(message, properties)
        prefix = PREFIXES[kind]
        name = prefix if view is None else trim(f"{prefix}: {_handlebars_text(view)}")
    if charged:
        data: dict[str, Any] = {}
        for source, target in (("checkout_id", "Charged ID"), ("revenue", "Amount")):
            value = properties.get(source)
            if present(value):
                data[target] = value
        products = properties.get("products")
        if present(products):
            items = _products(products)
            if type(items) is not list:
                return REJECT_BAD_PRODUCTS
            items = object_items(items, fixes)
            if not items:
                return REJECT_BAD_PRODUCTS
            data["Items"] = items
        for key, value in properties.items():
            if key not in _CHARGED_SOURCES:
                set_path(data, key, value)
    else:
        data = properties
    record: dict[str, Any] = {"evtName": name, "evtData": _checked_data(data, charged, fixes)}
    ts = first_timestamp(
        (
            ("properties.ts", properties.get("ts")),
            ("timestamp", message.get("timestamp")),
            ("originalTimestamp", message.get("originalTimestamp")),
        ),
        fixes,
    )
    if ts is not None:
        record["ts"] = ts
    record["type"] = "event"
    if object_id_mapping:
        anonymous_id = message.get("anonymousId")
        if usable(anonymous_id):
            record["objectId"] = anonymous_id
        else:
            user_id = usable_user_id_only(message)
            if user_id is None:
                return REJECT_NO_OBJECT_ID_OR_USER
            record["identity"] = user_id
    else:
        user_id = usable_user_id_full(message)
        if user_id is None:
            return REJECT_EVENT_WITHOUT_ID
        record["identity"] = user_id
    return Accepted((Record("event", record),), tuple(fixes))

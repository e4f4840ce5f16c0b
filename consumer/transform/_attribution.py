"""Install attribution from mobile measurement partners → CleverTap event records.

Each partner's payload (AppsFlyer Push API, Branch webhooks, Adjust callbacks, Segment's
`Install Attributed`) is first read into one `Touch`, in the partner's own field names; one
mapping then applies the destination's options, so every partner follows the same rules:

- the user is the CleverTap ID the partner's SDK captured (`objectId`), as every MMP integration
  does; `attributionUserKey: identity` falls back to the partner's user id as `identity`. No
  usable id: filtered, reason `missing_clevertap_id` (CleverTap would drop it too);
- a media source in `restrictedMediaSources` is never forwarded (`restricted_media_source`);
- installs become `Organic Install` / `Inorganic Install` events (names configurable; CleverTap's
  own `UTM Visited` is a system event that cannot be uploaded) with `utm_*` properties;
- in-app events go only when listed in `inAppEvents`, with AppsFlyer's three revenue policies.

Pure like the rest of the transform: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from ..clevertap_api import is_restricted_event
from ._preflight import checked_value, drop_long_key, limit_properties
from ._results import new_accepted, new_record
from ._ts import default_ts, epoch_seconds
from ._types import Accepted, AttributionOptions, Filtered, Fix, Record, Rejected, Result, TransformConfig
from ._vocab import REJECT_NOT_AN_OBJECT, REJECT_TOO_DEEP, RESTRICTED_EVENT

Partner = Literal["appsflyer", "branch", "adjust"]

MISSING_CLEVERTAP_ID: Final = "missing_clevertap_id"
EVENT_NOT_SELECTED: Final = "event_not_selected"
RESTRICTED_MEDIA_SOURCE: Final = "restricted_media_source"
ATTRIBUTION_FILTER_REASONS: Final = (MISSING_CLEVERTAP_ID, EVENT_NOT_SELECTED, RESTRICTED_MEDIA_SOURCE)

ORGANIC: Final = "organic"


@dataclass(slots=True)
class Touch:
    """One partner event, read into the fields the mapping needs."""

    partner: str
    install: bool
    event_name: str
    clevertap_id: Any = None
    user_id: Any = None
    ts: int | None = None
    media_source: Any = None
    organic: bool = False
    medium: Any = None
    campaign: Any = None
    adset: Any = None
    ad: Any = None
    reinstall: bool | None = None
    values: dict[str, Any] = field(default_factory=dict)
    revenue: Any = None
    currency: Any = None
    platform: Any = None  # the device OS as the partner names it (for `/attribution`)
    prefer_identity: bool = False  # RudderStack messages: userId first, as every other event


# --- reading the partners' payloads -----------------------------------------------------------


def _text(value: Any) -> str | None:
    """A usable identifier or label: non-empty text (numbers as their text), else None."""
    if type(value) is str:
        value = value.strip()
        return value or None
    if type(value) in (int, float) and type(value) is not bool:
        return str(value)
    return None


def _json_object(value: Any) -> dict[str, Any]:
    """An object, or the object in a JSON text (AppsFlyer's `event_value`); else empty."""
    if type(value) is dict:
        return value
    if type(value) is str and value.strip().startswith("{"):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
        return parsed if type(parsed) is dict else {}
    return {}


_AF_REVENUE_KEYS: Final = frozenset({"af_revenue", "af_currency"})


def read_appsflyer(p: Mapping[str, Any]) -> Touch:
    """AppsFlyer Push API: `customer_user_id` carries the CleverTap ID (AppsFlyer's CleverTap
    setup requires it); organic installs have `media_source` `organic` (or none)."""
    name = _text(p.get("event_name")) or ""
    install = name.casefold() in ("install", "reinstall")
    source = _text(p.get("media_source"))
    values = {k: v for k, v in _json_object(p.get("event_value")).items() if k not in _AF_REVENUE_KEYS}
    return Touch(
        partner="appsflyer",
        install=install,
        event_name=name,
        clevertap_id=_text(p.get("customer_user_id")),
        user_id=_text(p.get("customer_user_id")),
        ts=epoch_seconds(p.get("install_time") if install else p.get("event_time"))
        or epoch_seconds(p.get("event_time")),
        media_source=source,
        organic=source is None or source.casefold() == ORGANIC,
        medium=_text(p.get("af_channel")),
        campaign=_text(p.get("campaign")),
        adset=_text(p.get("af_adset")),
        ad=_text(p.get("af_ad")),
        reinstall=True if name.casefold() == "reinstall" else None,
        values=values,
        revenue=p.get("event_revenue"),
        currency=_text(p.get("event_revenue_currency")),
        platform=_text(p.get("platform")),
    )


_BRANCH_INSTALLS: Final = frozenset({"INSTALL", "REINSTALL"})
_BRANCH_ID: Final = "$clevertap_attribution_id"
_BRANCH_REVENUE_KEYS: Final = frozenset({"revenue", "currency"})


def read_branch(p: Mapping[str, Any]) -> Touch:
    """Branch webhooks: `custom_data.$clevertap_attribution_id` is the CleverTap ID; a referred
    (attributed) install is inorganic, its source the last touch's `~channel`."""
    name = _text(p.get("name")) or ""
    upper = name.upper()
    touch = p.get("last_attributed_touch_data")
    touch = touch if type(touch) is dict else {}
    custom = p.get("custom_data")
    custom = custom if type(custom) is dict else {}
    user = p.get("user_data")
    user = user if type(user) is dict else {}
    event = p.get("event_data")
    event = event if type(event) is dict else {}
    attributed = p.get("attributed") is True or str(p.get("attributed")).lower() == "true"
    values = {k: v for k, v in custom.items() if k != _BRANCH_ID}
    values.update((k, v) for k, v in event.items() if k not in _BRANCH_REVENUE_KEYS)
    return Touch(
        partner="branch",
        install=upper in _BRANCH_INSTALLS,
        event_name=name,
        clevertap_id=_text(custom.get(_BRANCH_ID)),
        user_id=_text(user.get("developer_identity")) or _text(custom.get("identity")),
        ts=epoch_seconds(p.get("timestamp")),
        media_source=_text(touch.get("~channel")) or _text(touch.get("~advertising_partner_name")),
        organic=not attributed,
        medium=_text(touch.get("~feature")),
        campaign=_text(touch.get("~campaign")),
        adset=_text(touch.get("~ad_set_name")),
        ad=_text(touch.get("~ad_name")) or _text(touch.get("~creative_name")),
        reinstall=True if upper == "REINSTALL" else None,
        values=values,
        revenue=event.get("revenue"),
        currency=_text(event.get("currency")),
        platform=_text(user.get("os")),
    )


_ADJUST_INSTALLS: Final = frozenset({"install", "reinstall", "reattribution_reinstall"})


def read_adjust(p: Mapping[str, Any]) -> Touch:
    """Adjust callbacks, as a JSON object of their placeholders: `clevertapId` is the global
    partner parameter Adjust's CleverTap module requires; `network_name` `Organic` is organic."""
    kind = _text(p.get("activity_kind")) or ""
    install = kind.casefold() in _ADJUST_INSTALLS
    network = _text(p.get("network_name"))
    params = _json_object(p.get("partner_parameters"))  # `{partner_parameters}`: a JSON text
    values = {k: v for k, v in params.items() if k not in ("clevertapId", "identity")}
    return Touch(
        partner="adjust",
        install=install,
        event_name=(_text(p.get("event_name")) or kind) if not install else kind,
        clevertap_id=_text(p.get("clevertapId")) or _text(params.get("clevertapId")),
        user_id=_text(p.get("identity")) or _text(params.get("identity")),
        ts=epoch_seconds(p.get("installed_at") if install else p.get("created_at"))
        or epoch_seconds(p.get("created_at")),
        media_source=network,
        organic=network is None or network.casefold() == ORGANIC,
        campaign=_text(p.get("campaign_name")),
        adset=_text(p.get("adgroup_name")),
        ad=_text(p.get("creative_name")),
        reinstall=True if "reinstall" in kind.casefold() else None,
        values=values,
        revenue=p.get("revenue"),
        currency=_text(p.get("currency")),
        platform=_text(p.get("os_name")),
    )


def read_install_attributed(message: Mapping[str, Any], ts: int | None) -> Touch:
    """Segment's mobile spec `Install Attributed` track event (RudderStack/Segment format)."""
    props = message.get("properties")
    props = props if type(props) is dict else {}
    campaign = props.get("campaign")
    campaign = campaign if type(campaign) is dict else {}
    source = _text(campaign.get("source"))
    anonymous = _text(message.get("anonymousId"))
    return Touch(
        partner=_text(props.get("provider")) or "segment",
        install=True,
        event_name="Install Attributed",
        clevertap_id=anonymous,
        user_id=_text(message.get("userId")),
        ts=ts,
        media_source=source,
        organic=source is None or source.casefold() == ORGANIC,
        medium=_text(campaign.get("medium")),
        campaign=_text(campaign.get("name")),
        adset=_text(campaign.get("ad_group")),
        ad=_text(campaign.get("ad_creative")),
        prefer_identity=True,
    )


INSTALL_ATTRIBUTED: Final = "Install Attributed"


def install_attributed(message: Mapping[str, Any], config: TransformConfig) -> Result:
    """The default profile's mapping of Segment's `Install Attributed` (the rudderstack profile
    sends it as RudderStack does: a plain event)."""
    fixes: list[Fix] = []
    result = map_touch(read_install_attributed(message, default_ts(message, fixes)), config.attribution)
    if fixes and type(result) is Accepted:
        return new_accepted(result.records, [*fixes, *result.fixes])
    return result


# --- the mapping --------------------------------------------------------------------------------


def _user(touch: Touch, options: AttributionOptions) -> tuple[str, str] | None:
    if touch.prefer_identity:
        if touch.user_id is not None:
            return "identity", touch.user_id
        return None if touch.clevertap_id is None else ("objectId", touch.clevertap_id)
    by_id = touch.partner != "appsflyer" or options.user_key == "objectId"
    if by_id and touch.clevertap_id is not None:
        return "objectId", touch.clevertap_id
    if options.user_key == "identity" and touch.user_id is not None:
        return "identity", touch.user_id
    return None


def _number(value: Any) -> float | int | None:
    if type(value) in (int, float):
        return value if math.isfinite(value) else None
    if type(value) is str:
        try:
            number = float(value)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        return int(number) if number.is_integer() and "." not in value else number
    return None


def _properties(values: Mapping[str, Any], fixes: list[Fix]) -> dict[str, Any]:
    """Partner parameters as CleverTap event properties: scalars as they are, nested values as
    their JSON text (CleverTap takes no objects in event properties), within its limits."""
    data: dict[str, Any] = {}
    for key, raw in values.items():
        if type(key) is not str or not key or drop_long_key(key, fixes) or raw is None:
            continue
        nested = type(raw) in (dict, list)
        keep, value = checked_value(key, orjson.dumps(raw).decode() if nested else raw, nested, fixes)
        if keep:
            data[key] = value
    return limit_properties(data, fixes)


def _record(name: str, data: dict[str, Any], user: tuple[str, str], ts: int | None) -> Record:
    record: dict[str, Any] = {"type": "event", "evtName": name, "evtData": data, user[0]: user[1]}
    if ts is not None:
        record["ts"] = ts
    return new_record("event", record)


def map_touch(touch: Touch, options: AttributionOptions) -> Result:
    """The records one partner event becomes under a destination's options."""
    source = touch.media_source
    if source is not None and source.casefold() in options.restricted_media_sources:
        return Filtered(touch.event_name, RESTRICTED_MEDIA_SOURCE)
    selected = None
    if not touch.install:
        selected = next((e for e in options.in_app_events if e.name == touch.event_name), None)
        if selected is None:
            return Filtered(touch.event_name, EVENT_NOT_SELECTED)
    user = _user(touch, options)
    if user is None:
        return Filtered(touch.event_name, MISSING_CLEVERTAP_ID)
    fixes: list[Fix] = []
    if selected is None:
        return new_accepted(_install(touch, options, user), fixes)
    name = selected.as_name or touch.event_name
    if is_restricted_event(name):
        return Rejected(400, f"event name {name[:100]!r} is reserved by CleverTap", RESTRICTED_EVENT)
    data = {} if selected.send == "none" else _properties(touch.values, fixes)
    revenue = _number(touch.revenue)
    if selected.send == "values_and_revenue" and revenue is not None:
        if name == "Charged":
            data["Amount"] = revenue
        else:
            data["revenue"] = revenue
        if touch.currency is not None:
            data["currency"] = touch.currency
    return new_accepted((_record(name, data, user, touch.ts),), fixes)


def _install(touch: Touch, options: AttributionOptions, user: tuple[str, str]) -> tuple[Record, ...]:
    data: dict[str, Any] = {"utm_source": ORGANIC if touch.organic else (touch.media_source or ORGANIC)}
    for key, value in (
        ("utm_medium", touch.medium),
        ("utm_campaign", touch.campaign),
        ("adset", touch.adset),
        ("ad", touch.ad),
    ):
        if value is not None:
            data[key] = value
    data["partner"] = touch.partner
    if touch.reinstall:
        data["reinstall"] = True
    if options.partner_name is not None and user[0] == "objectId":
        event = _partner_install(touch, options.partner_name, data, user[1])
    else:
        name = options.organic_install if touch.organic else options.inorganic_install
        event = _record(name, data, user, touch.ts)
    if not options.first_touch_profile or touch.reinstall:
        return (event,)
    profile: dict[str, Any] = {
        "Install Source": data["utm_source"],
        "Install Type": ORGANIC if touch.organic else "inorganic",
        "Install Partner": touch.partner,
    }
    for key, value in (("Install Medium", touch.medium), ("Install Campaign", touch.campaign)):
        if value is not None:
            profile[key] = value
    if touch.ts is not None:
        profile["Install Date"] = f"$D_{touch.ts}"
    record: dict[str, Any] = {"type": "profile", "profileData": profile, user[0]: user[1]}
    if touch.ts is not None:
        record["ts"] = touch.ts
    return (event, new_record("profile", record))


_READERS: Final = {"appsflyer": read_appsflyer, "branch": read_branch, "adjust": read_adjust}


def partner_transform(partner: Partner) -> Callable[[Mapping[str, Any], TransformConfig], Result]:
    """The transform for a partner format, with the signature of `transform`."""
    read = _READERS[partner]

    def transform_partner(payload: Mapping[str, Any], config: TransformConfig) -> Result:
        if type(payload) is not dict:
            return REJECT_NOT_AN_OBJECT
        try:
            return map_touch(read(payload), config.attribution)
        except (RecursionError, orjson.JSONEncodeError):  # parameters nested past any use
            return REJECT_TOO_DEEP

    transform_partner.__name__ = f"transform_{partner}"
    return transform_partner


def _partner_install(touch: Touch, partner_name: str, data: Mapping[str, Any], clevertap_id: str) -> Record:
    """An install for CleverTap's partner endpoint (§7.2): its non-secret query parameters; the
    deliverer adds the account id, token and passcode. A CleverTap ID is its only user key."""
    params: dict[str, Any] = {
        "partner_name": partner_name,
        "event_type": "organic_install" if touch.organic else "inorganic_install",
        "device_identifier": clevertap_id,
    }
    if touch.platform is not None:
        params["platform"] = touch.platform
    for key in ("utm_source", "utm_medium", "utm_campaign"):
        if key in data:
            params[key] = str(data[key])
    if touch.ts is not None:
        params["timestamp"] = touch.ts
    return new_record("attribution", params)

"""identify → a CleverTap `profile` record (plus a device `token` record); alias → `profile`.

profileData is built in RudderStack's order, which decides who wins on a clash:
  1. standard keys from traits, then context.traits (first value that counts):
     Email, Name, Phone, Gender (table), Employed, DOB (birthday), Education, Married,
     Customer Type, Photo;
  2. Name = "<first> <last>" when there is no Name and both parts are truthy;
  3. every other trait key, traits first, then context.traits (which overwrites); a dotted key
     writes a nested path;
  4. top-level objects/arrays become their JSON text, except category-(un)subscribe;
  5. overrideFields (from traits, else from context.traits) merged as given;
  6. null values removed.
The default profile then converts dates, normalises Phone and fits keys and values into
CleverTap's limits (see _preflight).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._identity import usable, usable_user_id_full, usable_user_id_only, user_id_full, user_id_only
from ._js import own_entries, present, set_path, stringify, to_string, truthy
from ._preflight import checked_phone, checked_value, drop_long_key
from ._tokens import token_record
from ._ts import dob_value, epoch_seconds, iso_date_value, rudderstack_ts
from ._types import Accepted, Fix, Record, Rejected
from ._vocab import (
    INVALID_DATE,
    INVALID_TIMESTAMP,
    NOT_AN_OBJECT_FIELD,
    REJECT_ALIAS_WITHOUT_IDS,
    REJECT_IDENTIFY_WITHOUT_ID,
    fix,
)

EXCLUDED_TRAITS: Final = frozenset(
    {
        "email",
        "firstName",
        "firstname",
        "first_name",
        "lastName",
        "lastname",
        "last_name",
        "name",
        "phone",
        "gender",
        "education",
        "employed",
        "birthday",
        "married",
        "customerType",
        "anonymousId",
        "avatar",
        "userId",
        "id",
        "ts",
        "overrideFields",
    }
)
KEPT_AS_OBJECTS: Final = frozenset({"category-unsubscribe", "category-resubscribe"})
GENDERS: Final = {
    **dict.fromkeys(("f", "F", "Female", "female", "FEMALE"), "F"),
    **dict.fromkeys(("m", "M", "Male", "male", "MALE"), "M"),
}
# (CleverTap key, trait) after Email and Name, in RudderStack's mapping order.
_PLAIN_STANDARD: Final = (
    ("Employed", "employed"),
    ("DOB", "birthday"),
    ("Education", "education"),
    ("Married", "married"),
    ("Customer Type", "customerType"),
    ("Photo", "avatar"),
)
# Keys CleverTap gives a meaning of their own: their string values are never read as dates.
_STANDARD_KEYS: Final = frozenset(
    {"Email", "Name", "Phone", "Gender", "Employed", "Education", "Married", "Customer Type", "Photo"}
)
_FIRST_NAMES: Final = ("firstName", "firstname", "first_name")
_LAST_NAMES: Final = ("lastName", "lastname", "last_name")
_MISSING: Final[Any] = object()


def _pick(traits: dict[str, Any] | None, ctx: dict[str, Any] | None, key: str) -> Any:
    if traits is not None:
        value = traits.get(key)
        if present(value):
            return value
    if ctx is not None:
        value = ctx.get(key)
        if present(value):
            return value
    return None


def _pick_any(traits: dict[str, Any] | None, ctx: dict[str, Any] | None, keys: tuple[str, ...]) -> Any:
    for source in (traits, ctx):
        if source is not None:
            for key in keys:
                value = source.get(key)
                if present(value):
                    return value
    return None


def _standard(
    message: Mapping[str, Any], traits: dict[str, Any] | None, ctx: dict[str, Any] | None
) -> dict[str, Any]:
    profile: dict[str, Any] = {}
    email = _pick(traits, ctx, "email")
    if email is None:
        properties = message.get("properties")
        if type(properties) is dict and present(properties.get("email")):
            email = properties["email"]
    if email is not None:
        profile["Email"] = email
    value = _pick(traits, ctx, "name")
    if value is not None:
        profile["Name"] = value
    value = _pick(traits, ctx, "phone")
    if value is not None:
        profile["Phone"] = value
    value = _pick(traits, ctx, "gender")
    if type(value) is str and value in GENDERS:
        profile["Gender"] = GENDERS[value]
    for key, trait in _PLAIN_STANDARD:
        value = _pick(traits, ctx, trait)
        if value is not None:
            profile[key] = value
    if not truthy(profile.get("Name")):
        first = _pick_any(traits, ctx, _FIRST_NAMES)
        last = _pick_any(traits, ctx, _LAST_NAMES)
        if truthy(first) and truthy(last):
            profile["Name"] = f"{to_string(first)} {to_string(last)}"
    return profile


def _custom(profile: dict[str, Any], source: Any) -> None:
    if not truthy(source):
        return
    entries = source.items() if type(source) is dict else own_entries(source)
    for key, value in entries:
        if key not in EXCLUDED_TRAITS:
            set_path(profile, key, value)


def _override_fields(traits: Any, ctx: Any) -> Any:
    value = traits.get("overrideFields") if type(traits) is dict else None
    if truthy(value):
        return value
    value = ctx.get("overrideFields") if type(ctx) is dict else None
    return value if truthy(value) else None


def _context_traits(message: Mapping[str, Any]) -> Any:
    context = message.get("context")
    return context.get("traits") if type(context) is dict else None


# ---------------------------------------------------------------------------------------------
# rudderstack profile


def _profile_rudderstack(message: Mapping[str, Any]) -> dict[str, Any]:
    traits = message.get("traits")
    ctx = _context_traits(message)
    profile = _standard(message, traits if type(traits) is dict else None, ctx if type(ctx) is dict else None)
    _custom(profile, traits)
    _custom(profile, ctx)
    for key, value in profile.items():
        if (type(value) is dict or type(value) is list) and key not in KEPT_AS_OBJECTS:
            profile[key] = stringify(value)
    overrides = _override_fields(traits, ctx)
    if overrides is not None:
        for key, value in own_entries(overrides):
            if key != "__proto__":
                profile[key] = value
    return {k: v for k, v in profile.items() if v is not None}


def _ts_rudderstack(message: Mapping[str, Any]) -> Any:
    """`traits.ts || context.traits.ts`, converted; _MISSING when the key is absent."""
    traits = message.get("traits")
    value = traits.get("ts", _MISSING) if type(traits) is dict else _MISSING
    if value is _MISSING or not truthy(value):
        ctx = _context_traits(message)
        value = ctx.get("ts", _MISSING) if type(ctx) is dict else _MISSING
    return _MISSING if value is _MISSING else rudderstack_ts(value)


def identify_rudderstack(message: Mapping[str, Any], object_id_mapping: bool) -> Accepted:
    profile = _profile_rudderstack(message)
    record: dict[str, Any] = {"type": "profile", "profileData": profile}
    ts = _ts_rudderstack(message)
    if ts is not _MISSING:
        record["ts"] = ts
    if not object_id_mapping:
        record["identity"] = user_id_full(message)
        return Accepted((Record("profile", record),))
    anonymous_id = message.get("anonymousId")
    user_id = user_id_only(message)
    if truthy(anonymous_id):
        record["objectId"] = anonymous_id
        if truthy(user_id):
            profile["identity"] = user_id
        token = token_record(message, anonymous_id)
        if token is not None:
            return Accepted((Record("profile", record), Record("token", token)))
    elif truthy(user_id):
        record["identity"] = user_id
    return Accepted((Record("profile", record),))


def alias_rudderstack(message: Mapping[str, Any]) -> Accepted:
    profile: dict[str, Any] = {}
    if "userId" in message:
        profile["identity"] = message["userId"]
    record: dict[str, Any] = {"type": "profile", "profileData": profile}
    ts = _ts_rudderstack(message)
    if ts is not _MISSING:
        record["ts"] = ts
    if "previousId" in message:
        record["identity"] = message["previousId"]
    return Accepted((Record("profile", record),))


# ---------------------------------------------------------------------------------------------
# default profile


def _object_or_none(value: Any, field: str, fixes: list[Fix]) -> dict[str, Any] | None:
    if type(value) is dict:
        return value
    if value is not None:
        fixes.append(fix(NOT_AN_OBJECT_FIELD, field, dropped=True))
    return None


def _profile_default(message: Mapping[str, Any], fixes: list[Fix]) -> dict[str, Any]:
    traits = _object_or_none(message.get("traits"), "traits", fixes)
    ctx = _object_or_none(_context_traits(message), "context.traits", fixes)
    profile = _standard(message, traits, ctx)
    _custom(profile, traits)
    _custom(profile, ctx)
    out: dict[str, Any] = {}
    for key, original in profile.items():
        if original is None or drop_long_key(key, fixes):
            continue
        value = original
        t = type(value)
        stringified = False
        if t is str:
            if key == "Phone":
                value = checked_phone(value, fixes)
                if value is None:
                    continue
            elif key == "DOB":
                value = _dob(value, fixes)
                if value is None:
                    continue
            elif key not in _STANDARD_KEYS and len(value) >= 10 and value[4] == "-":
                value = iso_date_value(value) or value
        elif key == "DOB":
            value = _dob(value, fixes)
            if value is None:
                continue
        elif key == "Phone":
            value = checked_phone(value, fixes)
            if value is None:
                continue
        elif (t is dict or t is list) and key not in KEPT_AS_OBJECTS:
            value = stringify(value)
            stringified = True
        keep, value = checked_value(key, value, stringified, fixes)
        if keep:
            out[key] = value
    overrides = _override_fields(traits, ctx)
    if overrides is not None:
        if type(overrides) is not dict:
            fixes.append(fix(NOT_AN_OBJECT_FIELD, "overrideFields", dropped=True))
        else:
            for key, given in overrides.items():
                if key == "__proto__":
                    continue
                if given is None:  # merged, then pruned with the other nulls: the key goes
                    out.pop(key, None)
                    continue
                if drop_long_key(key, fixes):
                    continue
                keep, value = checked_value(key, given, False, fixes)
                if keep:
                    out[key] = value
    return out


def _dob(value: Any, fixes: list[Fix]) -> str | None:
    date = dob_value(value)
    if date is None:
        fixes.append(fix(INVALID_DATE, "DOB", dropped=True))
    return date


def _ts_default(message: Mapping[str, Any], fixes: list[Fix]) -> int | None:
    traits = message.get("traits")
    ctx = _context_traits(message)
    candidates = (
        ("traits.ts", traits.get("ts") if type(traits) is dict else None),
        ("context.traits.ts", ctx.get("ts") if type(ctx) is dict else None),
        ("timestamp", message.get("timestamp")),
        ("originalTimestamp", message.get("originalTimestamp")),
    )
    return first_timestamp(candidates, fixes)


def first_timestamp(candidates: tuple[tuple[str, Any], ...], fixes: list[Fix]) -> int | None:
    """The first candidate that is a usable time; each present but unusable one is reported."""
    for field, value in candidates:
        if value is None or value == "":
            continue
        seconds = epoch_seconds(value)
        if seconds is not None:
            return seconds
        fixes.append(fix(INVALID_TIMESTAMP, field, dropped=True))
    return None


def identify_default(message: Mapping[str, Any], object_id_mapping: bool) -> Accepted | Rejected:
    fixes: list[Fix] = []
    if object_id_mapping:
        anonymous_id = message.get("anonymousId")
        if not usable(anonymous_id):
            anonymous_id = None
        user_id = usable_user_id_only(message)
        if anonymous_id is None and user_id is None:
            return REJECT_IDENTIFY_WITHOUT_ID
    else:
        user_id = usable_user_id_full(message)
        if user_id is None:
            return REJECT_IDENTIFY_WITHOUT_ID
    profile = _profile_default(message, fixes)
    record: dict[str, Any] = {"type": "profile", "profileData": profile}
    ts = _ts_default(message, fixes)
    if ts is not None:
        record["ts"] = ts
    if not object_id_mapping:
        record["identity"] = user_id
        return Accepted((Record("profile", record),), tuple(fixes))
    if anonymous_id is not None:
        record["objectId"] = anonymous_id
        if user_id is not None:
            profile["identity"] = user_id
        token = token_record(message, anonymous_id, strict=True)
        if token is not None:
            return Accepted((Record("profile", record), Record("token", token)), tuple(fixes))
    else:
        record["identity"] = user_id
    return Accepted((Record("profile", record),), tuple(fixes))


def alias_default(message: Mapping[str, Any]) -> Accepted | Rejected:
    user_id = message.get("userId")
    previous_id = message.get("previousId")
    if not usable(user_id) or not usable(previous_id):
        return REJECT_ALIAS_WITHOUT_IDS
    fixes: list[Fix] = []
    record: dict[str, Any] = {"type": "profile", "profileData": {"identity": user_id}}
    ts = _ts_default(message, fixes)
    if ts is not None:
        record["ts"] = ts
    record["identity"] = previous_id
    return Accepted((Record("profile", record),), tuple(fixes))

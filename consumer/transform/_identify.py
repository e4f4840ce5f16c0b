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
from datetime import date as _date
from typing import Any, Final

from ._identity import usable, usable_user_id_full, usable_user_id_only, user_id_full, user_id_only
from ._js import own_entries, present, set_path, stringify, to_string, truthy
from ._preflight import SAFE_KEY_CHARS, SAFE_VALUE_CHARS, checked_phone, checked_value, drop_long_key
from ._profile_values import checked_email, checked_gender, checked_msg_flags, checked_yes_no, profile_command
from ._results import new_accepted, new_record
from ._tokens import token_record
from ._ts import default_ts, dob_value, iso_date_value, rfc3339_seconds, rudderstack_ts
from ._types import Accepted, Fix, Rejected
from ._vocab import (
    INVALID_DATE,
    NAME_FROM_PART,
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
# (CleverTap key, trait) in RudderStack's mapping order; Email and Gender have extra rules.
_STANDARD: Final = (
    ("Email", "email"),
    ("Name", "name"),
    ("Phone", "phone"),
    ("Gender", "gender"),
    ("Employed", "employed"),
    ("DOB", "birthday"),
    ("Education", "education"),
    ("Married", "married"),
    ("Customer Type", "customerType"),
    ("Photo", "avatar"),
)
_STANDARD_AFTER_EMAIL: Final = _STANDARD[1:]
# Keys CleverTap gives a meaning of their own: their string values are never read as dates.
_STANDARD_KEYS: Final = frozenset(k for k, _ in _STANDARD if k != "DOB")
_UNSAFE_KEYS: Final = frozenset({"__proto__", "constructor", "prototype"})
_NOT_CUSTOM: Final = EXCLUDED_TRAITS | _UNSAFE_KEYS
_FIRST_NAMES: Final = ("firstName", "firstname", "first_name")
_LAST_NAMES: Final = ("lastName", "lastname", "last_name")
_EMPTY: Final[dict[str, Any]] = {}
_MISSING: Final[Any] = object()
_EPOCH_ORDINAL: Final = _date(1970, 1, 1).toordinal()


def _pick_any(traits: dict[str, Any], ctx: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for source in (traits, ctx):
        for key in keys:
            value = source.get(key)
            if present(value):
                return value
    return None


def _standard(message: Mapping[str, Any], traits: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    """Standard keys: traits first, then context.traits, the first value that counts (inlined
    `present`: not null, not "", not NaN)."""
    profile: dict[str, Any] = {}
    if not ctx:  # the usual case: one source, so absent keys cost one lookup
        email = traits.get("email")
        if not present(email):
            properties = message.get("properties")
            email = properties.get("email") if type(properties) is dict else None
        if present(email):
            profile["Email"] = email
        for key, trait in _STANDARD_AFTER_EMAIL:
            value = traits.get(trait)
            if value is None or value == "" or (type(value) is float and value != value):  # noqa: PLR0124
                continue
            if key == "Gender":
                value = GENDERS.get(value) if type(value) is str else None
                if value is None:
                    continue
            profile[key] = value
        _full_name(profile, traits, ctx)
        return profile
    for key, trait in _STANDARD:
        value = traits.get(trait)
        if value is None or value == "" or (type(value) is float and value != value):  # noqa: PLR0124
            value = ctx.get(trait)
            if value is None or value == "" or (type(value) is float and value != value):  # noqa: PLR0124
                if key != "Email":
                    continue
                properties = message.get("properties")
                value = properties.get("email") if type(properties) is dict else None
                if not present(value):
                    continue
        if key == "Gender":
            value = GENDERS.get(value) if type(value) is str else None
            if value is None:
                continue
        profile[key] = value
    _full_name(profile, traits, ctx)
    return profile


def _full_name(profile: dict[str, Any], traits: dict[str, Any], ctx: dict[str, Any]) -> None:
    if not truthy(profile.get("Name")):
        first = _pick_any(traits, ctx, _FIRST_NAMES)
        last = _pick_any(traits, ctx, _LAST_NAMES)
        if truthy(first) and truthy(last):
            profile["Name"] = f"{to_string(first)} {to_string(last)}"


def _custom(profile: dict[str, Any], source: Any) -> None:
    """Copy the non-standard traits of `source` into `profile` (set-value semantics)."""
    if not truthy(source):
        return
    entries = source.items() if type(source) is dict else own_entries(source)
    for key, value in entries:
        if key in _NOT_CUSTOM:
            continue
        if "." in key:
            set_path(profile, key, value)
        else:
            profile[key] = value


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
    profile = _standard(
        message, traits if type(traits) is dict else _EMPTY, ctx if type(ctx) is dict else _EMPTY
    )
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
        return new_accepted((new_record("profile", record),))
    anonymous_id = message.get("anonymousId")
    user_id = user_id_only(message)
    if truthy(anonymous_id):
        record["objectId"] = anonymous_id
        if truthy(user_id):
            profile["identity"] = user_id
        token = token_record(message, anonymous_id)
        if token is not None:
            return new_accepted((new_record("profile", record), new_record("token", token)))
    elif truthy(user_id):
        record["identity"] = user_id
    return new_accepted((new_record("profile", record),))


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
    return new_accepted((new_record("profile", record),))


# ---------------------------------------------------------------------------------------------
# default profile


def _object_or_none(value: Any, field: str, fixes: list[Fix]) -> dict[str, Any] | None:
    if type(value) is dict:
        return value
    if value is not None:
        fixes.append(fix(NOT_AN_OBJECT_FIELD, field, dropped=True))
    return None


_NEEDS_A_LOOK: Final = frozenset({str, dict, list})
_CHECKED_APART: Final = frozenset({"Phone", "DOB"})
_NOT_DATES: Final = _STANDARD_KEYS | _CHECKED_APART


def _profile_default(
    message: Mapping[str, Any], traits: dict[str, Any] | None, ctx: dict[str, Any] | None, fixes: list[Fix]
) -> dict[str, Any]:
    t_src, c_src = traits or _EMPTY, ctx or _EMPTY
    profile = _standard(message, t_src, c_src)
    if "Name" not in profile:  # RudderStack needs both parts; one is still the user's name
        first = _pick_any(t_src, c_src, _FIRST_NAMES)
        last = _pick_any(t_src, c_src, _LAST_NAMES)
        part = first if truthy(first) else last
        if truthy(part):
            profile["Name"] = to_string(part)
            fixes.append(fix(NAME_FROM_PART, "Name", dropped=False))
    if "Gender" not in profile:  # present but not in RudderStack's table: say so
        raw = _pick_any(t_src, c_src, ("gender",))
        if raw is not None:
            profile["Gender"] = raw  # checked (mapped or dropped, reported) after the overrides
    _custom(profile, traits)
    _custom(profile, ctx)
    out: dict[str, Any] = {}
    for key, value in profile.items():
        if len(key) > SAFE_KEY_CHARS and drop_long_key(key, fixes):
            continue
        t = type(value)
        if t is str:
            if len(value) >= 10:
                if value[4] == "-" and key not in _NOT_DATES:
                    date = iso_date_value(value)
                    if date is not None:
                        out[key] = date
                        continue
                if len(value) > SAFE_VALUE_CHARS and key not in _CHECKED_APART:
                    keep, cut = checked_value(key, value, False, fixes)
                    if keep:
                        out[key] = cut
                    continue
        elif t is dict or t is list:
            if t is dict and value:
                is_command, command = profile_command(key, value, fixes)
                if is_command:
                    if command is not None:
                        out[key] = command
                    continue
            if key not in KEPT_AS_OBJECTS and key not in _CHECKED_APART:
                text = stringify(value)
                if len(text) > SAFE_VALUE_CHARS:
                    keep, text = checked_value(key, text, True, fixes)
                    if not keep:
                        continue
                out[key] = text
                continue
        elif value is None:
            continue
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
    # After the overrides: CleverTap refuses a bad standard field whoever set it.
    for key, check in _STANDARD_CHECKS:
        if key in out:
            value = check(out[key], fixes)
            if value is None:
                del out[key]
            else:
                out[key] = value
    checked_msg_flags(out, fixes)
    return out


def _employed(value: Any, fixes: list[Fix]) -> Any:
    return checked_yes_no("Employed", value, fixes)


def _married(value: Any, fixes: list[Fix]) -> Any:
    return checked_yes_no("Married", value, fixes)


def _dob(value: Any, fixes: list[Fix]) -> str | None:
    if type(value) is str and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:  # the usual calendar date, without the general rules' detours
            return f"$D_{(_date.fromisoformat(value).toordinal() - _EPOCH_ORDINAL) * 86400}"
        except ValueError:
            pass
    date = dob_value(value)
    if date is None:
        fixes.append(fix(INVALID_DATE, "DOB", dropped=True))
    return date


_STANDARD_CHECKS: Final = (
    ("Email", checked_email),
    ("Phone", checked_phone),
    ("Gender", checked_gender),
    ("Employed", _employed),
    ("Married", _married),
    ("DOB", _dob),
)


def _ts_default(
    message: Mapping[str, Any], traits: dict[str, Any] | None, ctx: dict[str, Any] | None, fixes: list[Fix]
) -> int | None:
    own = traits.get("ts") if traits is not None else None
    ctx_own = ctx.get("ts") if ctx is not None else None
    if own is None and ctx_own is None:
        seconds = rfc3339_seconds(message.get("timestamp"))
        if seconds is not None:
            return seconds
    return default_ts(message, fixes, ("traits.ts", own), ("context.traits.ts", ctx_own))


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
        user_id = message.get("userId")
        if type(user_id) is not str or not user_id or user_id.isspace():
            user_id = usable_user_id_full(message)
            if user_id is None:
                return REJECT_IDENTIFY_WITHOUT_ID
    traits = _object_or_none(message.get("traits"), "traits", fixes)
    ctx = _object_or_none(_context_traits(message), "context.traits", fixes)
    profile = _profile_default(message, traits, ctx, fixes)
    record: dict[str, Any] = {"type": "profile", "profileData": profile}
    ts = _ts_default(message, traits, ctx, fixes)
    if ts is not None:
        record["ts"] = ts
    if not object_id_mapping:
        record["identity"] = user_id
        return new_accepted((new_record("profile", record),), fixes)
    if anonymous_id is not None:
        record["objectId"] = anonymous_id
        if user_id is not None:
            profile["identity"] = user_id
        token = token_record(message, anonymous_id, strict=True)
        if token is not None:
            return new_accepted((new_record("profile", record), new_record("token", token)), fixes)
    else:
        record["identity"] = user_id
    return new_accepted((new_record("profile", record),), fixes)


def alias_default(message: Mapping[str, Any]) -> Accepted | Rejected:
    user_id = message.get("userId")
    previous_id = message.get("previousId")
    if not usable(user_id) or not usable(previous_id):
        return REJECT_ALIAS_WITHOUT_IDS
    fixes: list[Fix] = []
    record: dict[str, Any] = {"type": "profile", "profileData": {"identity": user_id}}
    traits = message.get("traits")
    ctx = _context_traits(message)
    ts = _ts_default(
        message, traits if type(traits) is dict else None, ctx if type(ctx) is dict else None, fixes
    )
    if ts is not None:
        record["ts"] = ts
    record["identity"] = previous_id
    return new_accepted((new_record("profile", record),), fixes)

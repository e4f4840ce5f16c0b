"""The default profile's fixes for values CleverTap refuses or misreads (clevertap-api.md §3.2).

CleverTap rejects a whole profile for one badly formatted standard field (515 Email, 517
Employed, 519 Married, 514 Gender) and silently mis-types others (a `"false"` subscription
flag is a string, not an opt-out). Each repair, or drop when nothing safe can be made of the
value, is reported as a `Fix`, never done silently. RudderStack sends all of these unchanged.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ._js import to_string
from ._types import Fix
from ._vocab import AMOUNT, GENDER, INVALID_EMAIL, ITEM_NESTED, MSG_FLAG, PROFILE_COMMAND, YES_NO, fix

# Deliberately loose: one @, no spaces, a dot in the domain. CleverTap's own rule is not
# published; this refuses only what no mail server accepts.
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_YES: Final = frozenset({"y", "yes", "true", "1"})
_NO: Final = frozenset({"n", "no", "false", "0"})
_GENDERS: Final = {"f": "F", "female": "F", "m": "M", "male": "M"}
MSG_PREFIX: Final = "MSG-"
_COMMANDS: Final = frozenset({"$add", "$remove", "$incr", "$decr", "$delete"})
_NUMBER: Final = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def _as_bool(value: Any) -> bool | None:
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if type(value) is str:
        text = value.strip().lower()
        if text in _YES:
            return True
        if text in _NO:
            return False
    return None


def checked_email(value: Any, fixes: list[Fix]) -> Any:
    """`Email` as given when it looks like an address; otherwise None (dropped, reported)."""
    if type(value) is str and _EMAIL.fullmatch(value):
        return value
    if type(value) is str and _EMAIL.fullmatch(value.strip()):
        fixes.append(fix(INVALID_EMAIL, "Email", dropped=False))
        return value.strip()
    fixes.append(fix(INVALID_EMAIL, "Email", dropped=True))
    return None


def checked_yes_no(key: str, value: Any, fixes: list[Fix]) -> Any:
    """`Employed` / `Married` as CleverTap's `Y` / `N` (booleans and yes/no words converted)."""
    if value in ("Y", "N"):
        return value
    flag = _as_bool(value)
    fixes.append(fix(YES_NO, key, dropped=flag is None))
    return None if flag is None else ("Y" if flag else "N")


def checked_gender(value: Any, fixes: list[Fix]) -> Any:
    """`Gender` as `M` / `F`; other casings of the mapped words fixed, anything else dropped."""
    if value in ("M", "F"):
        return value
    mapped = _GENDERS.get(value.strip().lower()) if type(value) is str else None
    fixes.append(fix(GENDER, "Gender", dropped=mapped is None))
    return mapped


def checked_msg_flags(profile: dict[str, Any], fixes: list[Fix]) -> None:
    """Subscription flags (`MSG-email`, `MSG-push`, …) as booleans, in place."""
    for key in [k for k in profile if k.startswith(MSG_PREFIX)]:
        value = profile[key]
        if type(value) is bool:
            continue
        flag = _as_bool(value)
        fixes.append(fix(MSG_FLAG, key, dropped=flag is None))
        if flag is None:
            del profile[key]
        else:
            profile[key] = flag


def profile_command(key: str, value: dict[str, Any], fixes: list[Fix]) -> tuple[bool, Any]:
    """(is a command?, the command to send or None to drop it) for a trait value such as
    `{"$add": ["a"]}`. A well-formed command is sent as an object, not as its JSON text."""
    if len(value) != 1:
        return False, None
    ((name, arg),) = value.items()
    if name not in _COMMANDS:
        return False, None
    ok = False
    if name in ("$add", "$remove"):
        if type(arg) is str:
            arg = [arg]
        ok = type(arg) is list and 0 < len(arg) <= 100 and all(type(v) is str for v in arg)
    elif name in ("$incr", "$decr"):
        ok = type(arg) in (int, float)
    else:  # $delete
        ok = arg == 1 or arg is True
        arg = 1
    if not ok:
        fixes.append(fix(PROFILE_COMMAND, key, dropped=True))
        return True, None
    return True, {name: arg}


def checked_amount(value: Any, fixes: list[Fix]) -> Any:
    """Charged `Amount` as a number: a numeric string is converted, other text dropped."""
    if type(value) is int or type(value) is float:
        return value
    if type(value) is str and _NUMBER.fullmatch(value.strip()):
        number = float(value)
        fixes.append(fix(AMOUNT, "Amount", dropped=False))
        return (
            int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
        )
    fixes.append(fix(AMOUNT, "Amount", dropped=True))
    return None


def flat_item(item: dict[str, Any], index: int, fixes: list[Fix]) -> dict[str, Any]:
    """One Charged item with nested objects flattened (`{"dims": {"w": 2}}` → `dims_w: 2`) and
    arrays dropped; CleverTap takes only scalar item properties."""
    for v in item.values():  # the usual flat item: one pass, no copy
        if type(v) is dict or type(v) is list:
            break
    else:
        return item
    out: dict[str, Any] = {}

    def put(prefix: str, data: dict[str, Any]) -> None:
        for k, v in data.items():
            name = f"{prefix}_{k}" if prefix else to_string(k)
            if type(v) is dict:
                fixes.append(fix(ITEM_NESTED, f"Items[{index}].{name}", dropped=False))
                put(name, v)
            elif type(v) is list:
                fixes.append(fix(ITEM_NESTED, f"Items[{index}].{name}", dropped=True))
            elif name not in out:
                out[name] = v

    put("", item)
    return out

"""CleverTap's per-record checks, as the fake server applies them to each record of `/1/upload`.

The codes and the shape of the error text follow CleverTap's API errors page and the replies seen
in public client code ("… ErrorCode: 509 - Event name is mandatory. Skipped record number : 2").
The real server's exact wording is unknown beyond those samples, so the texts say what is wrong
without echoing values: tests match on codes, people read the text.

Key and value length limits (120 and 512 bytes) answer 512 "invalid event structure", for
profiles too. CleverTap documents no code for them; 555 would be the other candidate, but 555 is
the one per-record code a client re-sends, and an over-long value never gets better by retrying.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from itertools import chain, repeat
from typing import Any

import orjson

from ..clevertap_api import MAX_EVENT_PROPERTIES, MAX_KEY_BYTES, MAX_VALUE_BYTES, is_restricted_event

IDENTIFIERS = ("identity", "objectId", "FBID", "GPID")
_EMPTY = (None, "")
_NO_PROPS: dict[str, Any] = {}
TOKEN_TYPES = frozenset({"apns", "gcm", "fcm", "wns", "mpns", "chrome"})
PROFILE_COMMANDS = frozenset({"$add", "$remove", "$incr", "$decr", "$delete"})
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# Seconds since the epoch up to the year 5138: millisecond timestamps of any date after 1973
# are above this, so a client that sends ms is told so instead of landing in the far future.
_MAX_TS_SECONDS = 100_000_000_000

Error = tuple[int, str]

E_NO_EVENT_NAME = (509, "Event Name is incorrect. ErrorCode: 509 - Event name is mandatory.")
E_STRUCTURE = 512
E_RESTRICTED = (513, "Event Name is incorrect. ErrorCode: 513 - Trying to raise a restricted system event.")
E_GENDER = (514, "Profile data is incorrect. ErrorCode: 514 - Gender must be M or F.")
E_EMAIL = (515, "Profile data is incorrect. ErrorCode: 515 - Email is invalid.")
E_EMPLOYED = (517, "Profile data is incorrect. ErrorCode: 517 - Employed must be Y or N.")
E_EDUCATION = (
    518,
    "Profile data is incorrect. ErrorCode: 518 - Education must be School, College or Graduate.",
)
E_MARRIED = (519, "Profile data is incorrect. ErrorCode: 519 - Married must be Y or N.")
E_PHONE = (
    516,
    "Profile data is incorrect. ErrorCode: 516 - Phone must be in E.164 format (+<country><number>).",
)
E_TOO_MANY_PROPERTIES = (
    522,
    f"Event data is incorrect. ErrorCode: 522 - More than {MAX_EVENT_PROPERTIES} event properties.",
)
E_IDENTITY = (
    523,
    "Identity is missing. ErrorCode: 523 - Exactly one of identity, objectId, FBID or GPID is required.",
)
E_TYPE = (524, "Record type is incorrect. ErrorCode: 524 - Data neither event nor profile.")
E_TS = (525, "Timestamp is incorrect. ErrorCode: 525 - ts must be an integer UNIX epoch in seconds.")
E_TOKEN_OBJECT_ID = (530, "Token data is incorrect. ErrorCode: 530 - objectId is missing or invalid.")
E_TOKEN_DATA = (531, "Token data is incorrect. ErrorCode: 531 - tokenData must be an object.")
E_TOKEN_ID = (532, "Token data is incorrect. ErrorCode: 532 - Token id is missing.")
E_TOKEN_TYPE_MISSING = (533, "Token data is incorrect. ErrorCode: 533 - Token type is missing.")
E_TOKEN_TYPE = (534, "Token data is incorrect. ErrorCode: 534 - Token type is not valid.")
E_TOKEN_KEYS = (
    535,
    "Token data is incorrect. ErrorCode: 535 - chrome tokens need keys.p256dh and keys.auth.",
)
E_MISC = (555, "Miscellaneous server error. ErrorCode: 555 - Please retry.")


_CHECKED_PROFILE_KEYS = {
    "Gender": E_GENDER,
    "Email": E_EMAIL,
    "Phone": E_PHONE,
    "Employed": E_EMPLOYED,
    "Education": E_EDUCATION,
    "Married": E_MARRIED,
}
# CleverTap's closed vocabularies for standard profile fields (clevertap-api.md §3.2).
_ALLOWED_VALUES = {
    "Gender": ("M", "F"),
    "Employed": ("Y", "N"),
    "Married": ("Y", "N"),
    "Education": ("School", "College", "Graduate"),
}


def _structure(detail: str) -> Error:
    return (E_STRUCTURE, f"Event data is incorrect. ErrorCode: 512 - Invalid event structure: {detail}.")


def _too_long(text: str, limit: int) -> bool:
    # A str of n characters is at most 4n UTF-8 bytes: skip the encode for the common short case.
    return len(text) * 4 > limit and len(text.encode()) > limit


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _plainly_valid(props: dict[Any, Any]) -> bool:
    """Flat properties with short keys and values, told with a few C-level calls.

    Most records are like that, and the fake must keep up with the end-to-end benchmark: this
    skips the per-property loop below for them. orjson writes UTF-8 and only ever adds escapes,
    so a serialised length within the value limit bounds every value at once, and a serialised
    form with no `{` or `[` past its first byte has no nested value (a bracket inside a string
    only sends the record the slow way).
    """
    try:
        out = orjson.dumps(props)
    except TypeError:  # an integer orjson cannot write: let the slow path judge
        return False
    return (
        len(out) <= MAX_VALUE_BYTES
        and out.find(b"{", 1) < 0
        and b"[" not in out
        and max(map(len, props)) * 4 <= MAX_KEY_BYTES
    )


def _check_properties(props: dict[Any, Any], *, charged: bool) -> Error | None:
    if not props or _plainly_valid(props):
        return None
    for key, value in props.items():
        if _too_long(key, MAX_KEY_BYTES):
            return _structure(f"a key is longer than {MAX_KEY_BYTES} bytes")
        if isinstance(value, str):
            if _too_long(value, MAX_VALUE_BYTES):
                return _structure(f"a value is longer than {MAX_VALUE_BYTES} bytes")
        elif _scalar(value):
            continue
        elif charged and key == "Items" and isinstance(value, list):
            for item in value:
                if not isinstance(item, dict) or not all(_scalar(v) for v in item.values()):
                    return _structure("Charged Items must be flat objects")
                error = _check_properties(item, charged=False)
                if error:
                    return error
        else:
            return _structure(f"property {key!r} is not a scalar")
    return None


def _check_profile_data(data: dict[Any, Any]) -> Error | None:
    for key, value in data.items():
        if _too_long(key, MAX_KEY_BYTES):
            return _structure(f"a key is longer than {MAX_KEY_BYTES} bytes")
        if isinstance(value, str):
            if _too_long(value, MAX_VALUE_BYTES):
                return _structure(f"a value is longer than {MAX_VALUE_BYTES} bytes")
            allowed = _ALLOWED_VALUES.get(key)
            if allowed is not None and value not in allowed:
                return _CHECKED_PROFILE_KEYS[key]
            if key == "Email" and not _EMAIL.fullmatch(value):
                return E_EMAIL
            if key == "Phone" and not _E164.fullmatch(value):
                return E_PHONE
        elif key in _CHECKED_PROFILE_KEYS and value is not None:
            return _CHECKED_PROFILE_KEYS[key]
        elif _scalar(value):
            continue
        elif isinstance(value, list):  # multi-value property: strings only
            if not all(isinstance(v, str) and not _too_long(v, MAX_VALUE_BYTES) for v in value):
                return _structure(
                    f"multi-value property {key!r} must hold strings of ≤ {MAX_VALUE_BYTES} bytes"
                )
        elif isinstance(value, dict) and len(value) == 1 and next(iter(value)) in PROFILE_COMMANDS:
            continue
        else:
            return _structure(f"property {key!r} is not a scalar, a list of strings or a command")
    return None


def _check_token(record: dict[str, Any]) -> Error | None:
    object_id = record.get("objectId")
    if not isinstance(object_id, str) or not object_id:
        return E_TOKEN_OBJECT_ID
    data = record.get("tokenData")
    if not isinstance(data, dict):
        return E_TOKEN_DATA
    token_id = data.get("id")
    if not isinstance(token_id, str) or not token_id:
        return E_TOKEN_ID
    token_type = data.get("type")
    if token_type is None or token_type == "":
        return E_TOKEN_TYPE_MISSING
    if token_type not in TOKEN_TYPES:
        return E_TOKEN_TYPE
    if token_type == "chrome":
        keys = data.get("keys")
        if not isinstance(keys, dict) or not keys.get("p256dh") or not keys.get("auth"):
            return E_TOKEN_KEYS
    return None


def _identifiers(record: dict[str, Any]) -> int:
    return sum(1 for k in IDENTIFIERS if record.get(k) not in _EMPTY)


_restricted = functools.lru_cache(maxsize=4096)(is_restricted_event)


def check_record(record: Any) -> Error | None:
    """CleverTap's verdict on one record: `(code, text)` when it would be skipped, else None.

    Written for speed on the common record (one identifier, flat short properties): the fake
    has to keep up with the end-to-end benchmark.
    """
    if type(record) is not dict:
        return E_TYPE
    kind = record.get("type")
    if kind == "token":
        return _check_token(record)
    if kind not in ("event", "profile"):
        return E_TYPE
    if (
        record.get("identity") in _EMPTY or "objectId" in record or "FBID" in record or "GPID" in record
    ) and _identifiers(record) != 1:
        return E_IDENTITY
    if "ts" in record:
        ts = record["ts"]
        if type(ts) is not int or not 0 <= ts < _MAX_TS_SECONDS:
            return E_TS
    if kind == "profile":
        data = record.get("profileData", {})
        if type(data) is not dict:
            return _structure("profileData must be an object")
        return _check_profile_data(data)
    name = record.get("evtName")
    if type(name) is not str or not name or name.isspace():
        return E_NO_EVENT_NAME
    if _restricted(name):
        return E_RESTRICTED
    props = record.get("evtData", _NO_PROPS)
    if type(props) is not dict:
        return _structure("evtData must be an object")
    if len(props) > MAX_EVENT_PROPERTIES:
        return E_TOO_MANY_PROPERTIES
    return _check_properties(props, charged=name == "Charged")


def _plain_events(events: list[dict[str, Any]]) -> bool:
    """True only if `check_record` accepts every one of these event records.

    Told with C-level passes over the whole list (`map` of builtins), about a fifth of the cost
    of checking record by record: the fake has to keep up with the end-to-end benchmark. Any
    doubt (another identifier, a Charged event, a long or nested value) answers False, and the
    caller checks record by record.
    """
    get = dict.get
    identities = list(map(get, events, repeat("identity")))
    if None in identities or "" in identities:
        return False
    if any(any(map(dict.__contains__, events, repeat(key))) for key in IDENTIFIERS[1:]):
        return False
    stamps = list(map(get, events, repeat("ts"), repeat(0)))
    if set(map(type, stamps)) != {int} or min(stamps) < 0 or max(stamps) >= _MAX_TS_SECONDS:
        return False
    for name in set(map(get, events, repeat("evtName"))):
        if type(name) is not str or not name or name.isspace() or name == "Charged" or _restricted(name):
            return False
    props = list(map(get, events, repeat("evtData"), repeat(_NO_PROPS)))
    if set(map(type, props)) != {dict} or max(map(len, props)) > MAX_EVENT_PROPERTIES:
        return False
    if max(map(len, set(chain.from_iterable(props))), default=0) * 4 > MAX_KEY_BYTES:
        return False
    try:
        dumped = list(map(orjson.dumps, props))  # see _plainly_valid for why this bounds the values
    except TypeError:
        return False
    if max(map(len, dumped)) > MAX_VALUE_BYTES:
        return False
    joined = b"".join(dumped)
    return joined.count(b"{") == len(dumped) and b"[" not in joined


def check_records(records: list[Any]) -> dict[int, Error]:
    """CleverTap's verdicts on a request's records: `{0-based index: (code, text)}` for the
    ones it would skip. Same answers as `check_record` on each, faster on plain events."""
    events = [i for i, r in enumerate(records) if type(r) is dict and r.get("type") == "event"]
    to_check: Iterable[int] = range(len(records))
    if events and _plain_events([records[i] for i in events]):
        plain = set(events)
        to_check = [i for i in to_check if i not in plain]
    errors: dict[int, Error] = {}
    for i in to_check:
        error = check_record(records[i])
        if error is not None:
            errors[i] = error
    return errors

"""Record timestamps (`ts`) and CleverTap date values (`$D_<epoch seconds>`).

CleverTap wants `ts` in epoch seconds and answers anything else with error 525; without `ts` it
stamps the time the upload arrives, which is wrong by the consumer lag (or by days on a replay).

rudderstack profile: `ts` comes from `properties.ts` / `traits.ts` only and is converted the way
RudderStack converts it (see `rudderstack_ts`), numeric strings and milliseconds included.

default profile, `epoch_seconds` rules for a `ts` candidate:
  * booleans, null, objects and arrays are not timestamps;
  * a number, or a string that is a decimal number, is an epoch: below 1e11 seconds, below 1e14
    milliseconds, below 1e17 microseconds, below 1e20 nanoseconds; fractions are floored;
  * any other string is read as ISO 8601 (`datetime.fromisoformat`: `2021-03-10T11:59:22.080Z`,
    `2021-03-10 11:59:22+05:30`, `2021-03-10`, …); without an offset it is UTC;
  * the result must be after 1970-01-01T00:00:00Z, or the candidate is not a timestamp.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, Final

from ._js import to_number, to_string, truthy
from ._js_date import parse_date_ms
from ._types import Fix
from ._vocab import INVALID_TIMESTAMP, fix

_NAIVE_EPOCH: Final = datetime(1970, 1, 1)
_EPOCH_ORDINAL: Final = _NAIVE_EPOCH.toordinal()
_SECOND: Final = timedelta(seconds=1)
_DECIMAL: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)


def rudderstack_ts(value: Any) -> Any:
    """RudderStack's conversion: a truthy value whose `Number()` is NaN or 0 goes through
    `new Date(value)` and becomes floor(ms / 1000), or null when JavaScript cannot parse it; any
    other value is kept exactly as given (numeric strings, milliseconds, `true`)."""
    if not truthy(value):
        return value
    number = to_number(value)
    if not math.isnan(number) and number != 0:
        return value
    if type(value) is dict:
        return None  # String({}) is "[object Object]": never a date
    ms = parse_date_ms(to_string(value))
    return None if ms is None else ms // 1000


def _scaled(x: float) -> int:
    """Epoch seconds from a number that may be in s, ms, µs or ns (told apart by magnitude)."""
    magnitude = abs(x)
    if magnitude < 1e11:
        return math.floor(x)
    if magnitude < 1e14:
        return math.floor(x / 1e3)
    if magnitude < 1e17:
        return math.floor(x / 1e6)
    return math.floor(x / 1e9)


def _iso_seconds(text: str) -> int | None:
    try:
        if len(text) == 10:  # a calendar date, midnight UTC: the cheaper parse
            return (date.fromisoformat(text).toordinal() - _EPOCH_ORDINAL) * 86400
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return (parsed - _NAIVE_EPOCH) // _SECOND  # no offset: UTC
    return math.floor(parsed.timestamp())


def _seconds(value: Any) -> int | None:
    t = type(value)
    if t is str:
        if len(value) >= 10 and value[4] == "-":  # the usual ISO timestamp: try it first
            seconds = _iso_seconds(value)
            if seconds is not None:
                return seconds
        text = value.strip()
        if _DECIMAL.fullmatch(text):
            return _seconds(float(text))
        return _iso_seconds(text) if text[:4].isdigit() else None
    if t is int or t is float:
        return _scaled(value) if math.isfinite(value) and abs(value) < 1e20 else None
    return None


def epoch_seconds(value: Any) -> int | None:
    """The default profile's `ts` from one candidate value; None if it is not a usable time."""
    seconds = _seconds(value)
    return seconds if seconds is not None and seconds > 0 else None


def rfc3339_seconds(value: Any) -> int | None:
    """Epoch seconds of a UTC RFC 3339 timestamp (`2026-11-01T00:00:03.530Z`, what RudderStack's
    SDKs and server write); None for anything else, which then takes the general rules."""
    if type(value) is str and len(value) >= 20 and value[-1] == "Z" and value[4] == "-":
        try:
            seconds = math.floor(datetime.fromisoformat(value).timestamp())
        except ValueError:
            return None
        return seconds if seconds > 0 else None
    return None


def _event_time(value: Any) -> int | None:
    seconds = rfc3339_seconds(value)
    return seconds if seconds is not None else epoch_seconds(value)


def default_ts(message: Mapping[str, Any], fixes: list[Fix], *own: tuple[str, Any]) -> int | None:
    """The default profile's `ts`: the record's own `ts` fields (`properties.ts`, or `traits.ts`
    then `context.traits.ts`), else the event's `timestamp`, else `originalTimestamp`. A present
    but unusable candidate is reported and skipped; with none usable there is no `ts` (CleverTap
    then uses the arrival time).
    """
    for name, value in own:
        if value is not None and value != "":
            seconds = epoch_seconds(value)
            if seconds is not None:
                return seconds
            fixes.append(fix(INVALID_TIMESTAMP, name, dropped=True))
    for name in ("timestamp", "originalTimestamp"):
        value = message.get(name)
        if value is not None and value != "":
            seconds = _event_time(value)
            if seconds is not None:
                return seconds
            fixes.append(fix(INVALID_TIMESTAMP, name, dropped=True))
    return None


# ---------------------------------------------------------------------------------------------
# `$D_` dates (default profile)
#
# Property and trait values: a string that is exactly an ISO-8601 calendar date (`1990-04-12`)
# or date-time (`2024-01-15T10:30`, `…:45`, `…:45.123`, optionally `Z` or `±HH:MM`; UTC when no
# offset) becomes `$D_<epoch seconds>`. Nothing else is guessed: numbers stay numbers, and
# `12/05/1990` or `2024-01-15 10:30` stay text, because a wrong guess changes a property's type in
# CleverTap for good.
#
# DOB (from `birthday`): the same ISO forms (and whatever else `fromisoformat` reads), an epoch
# number (seconds, or milliseconds when |value| ≥ 1e11; negative for births before 1970), or a
# string already in `$D_<integer>` form. Anything else cannot be a date and is dropped.

_STRICT_ISO: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?",
    re.ASCII,
)
_DATE_VALUE: Final = re.compile(r"\$D_-?[0-9]+", re.ASCII)


def iso_date_value(text: str) -> str | None:
    """`$D_<epoch>` for a strict ISO-8601 date or date-time string, else None."""
    if len(text) == 10:
        if text[4] != "-" or text[7] != "-":  # not a calendar date (2021-W10-3 is a week date)
            return None
    elif _STRICT_ISO.fullmatch(text) is None:
        return None
    seconds = _iso_seconds(text)
    return None if seconds is None else f"$D_{seconds}"


def dob_value(value: Any) -> str | None:
    """CleverTap's `DOB` from a `birthday` trait, or None when it cannot be a date."""
    t = type(value)
    if t is int or t is float:
        if not math.isfinite(value) or abs(value) >= 1e17:
            return None
        return f"$D_{math.floor(value) if abs(value) < 1e11 else math.floor(value / 1e3)}"
    if t is not str:
        return None
    if len(value) >= 10 and value[4] == "-":  # the usual ISO date: try it first
        seconds = _iso_seconds(value)
        if seconds is not None:
            return f"$D_{seconds}"
    text = value.strip()
    if _DATE_VALUE.fullmatch(text):
        return str(text)
    if _DECIMAL.fullmatch(text):
        return dob_value(float(text))
    seconds = _iso_seconds(text) if text[:4].isdigit() else None
    return None if seconds is None else f"$D_{seconds}"

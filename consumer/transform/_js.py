"""JavaScript value semantics, as RudderStack's Node.js transformer applies them.

The rudderstack profile must produce the same bytes as RudderStack, and RudderStack's behaviour
is JavaScript's: which values count as "present", how `String()`, `Number()` and
`JSON.stringify` print numbers, which characters Handlebars escapes. Python's defaults differ on
every one of these (`json.dumps` adds spaces and escapes non-ASCII, `str(1.0)` is `"1.0"`,
`float("inf")` parses), so the pieces live here, written against the ECMAScript rules and checked
against Node with dev/js_diff.py.

Values are JSON values as Python sees them: dict, list, str, int, float, bool, None. A JSON
number is an IEEE double in JavaScript, so integers beyond 2**53 print as the double they become.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from json.encoder import encode_basestring  # the C encoder when available: escapes exactly "\\, \", < 0x20
from typing import Any, Final

import orjson

# ECMAScript WhiteSpace + LineTerminator: what `String.prototype.trim` and `Number()` strip.
# Python's `str.strip()` differs (it strips \x1c-\x1f and \x85, and keeps \ufeff).
JS_WHITESPACE: Final = (
    "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)

_MAX_SAFE_INT: Final = 2**53
_MAX_ARRAY_INDEX: Final = 2**32 - 2


def truthy(value: Any) -> bool:
    """JavaScript truthiness of a JSON value: `{}` and `[]` are true, `0`, `""` and null are not."""
    if value is None or value is False:
        return False
    t = type(value)
    if t is str:
        return bool(value)
    if t is int:
        return bool(value)
    if t is float:
        return bool(value) and not math.isnan(value)
    return True


def present(value: Any) -> bool:
    """RudderStack's "the value counts" test: truthy, or exactly `0` or `false`.

    Used wherever RudderStack picks the first of several source fields, so an explicit `0` or
    `false` is kept while null and `""` fall through to the next source.
    """
    if value is None:
        return False
    t = type(value)
    if t is str:
        return bool(value)
    if t is float:
        return not math.isnan(value)
    return True


# ---------------------------------------------------------------------------------------------
# Numbers


def number_to_string(x: float) -> str:
    """`Number.prototype.toString()` for a double (ECMAScript Number::toString, radix 10).

    Python's `repr` already yields the shortest round-tripping digits, as JavaScript does; only
    the layout differs (JavaScript switches to exponent form at 1e21 and below 1e-6, and prints
    integral values without a fraction).
    """
    if math.isnan(x):
        return "NaN"
    if x in (math.inf, -math.inf):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    if x.is_integer() and -_MAX_SAFE_INT < x < _MAX_SAFE_INT:
        return str(int(x))
    sign = "-" if x < 0 else ""
    mantissa, _, exp_text = repr(abs(x)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = int_part + frac_part
    stripped = digits.lstrip("0")
    # value = 0.<digits> × 10**n
    n = len(int_part) + (int(exp_text) if exp_text else 0) - (len(digits) - len(stripped))
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exp = ("e+" if e >= 0 else "e-") + str(abs(e))
    if k == 1:
        return sign + digits + exp
    return sign + digits[0] + "." + digits[1:] + exp


def int_to_string(i: int) -> str:
    """An integer as JavaScript prints it: exact up to 2**53, the nearest double beyond."""
    if -_MAX_SAFE_INT < i < _MAX_SAFE_INT:
        return str(i)
    try:
        return number_to_string(float(i))
    except OverflowError:  # beyond the double range: JSON.parse gives ±Infinity
        return "Infinity" if i > 0 else "-Infinity"


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_RADIX = {
    "x": (16, re.compile(r"[0-9a-fA-F]+")),
    "o": (8, re.compile(r"[0-7]+")),
    "b": (2, re.compile(r"[01]+")),
}


def string_to_number(text: str) -> float:
    """`Number(string)`: trims JS whitespace, accepts `0x`/`0o`/`0b`, `Infinity`, `1e3`, `.5`.

    Python's `float()` accepts `inf`, `nan` and `1_000`, which JavaScript does not.
    """
    s = text.strip(JS_WHITESPACE)
    if not s:
        return 0.0
    if _DECIMAL.fullmatch(s):
        return float(s)
    if s in ("Infinity", "+Infinity"):
        return math.inf
    if s == "-Infinity":
        return -math.inf
    if len(s) > 2 and s[0] == "0":
        radix = _RADIX.get(s[1].lower())
        if radix is not None and radix[1].fullmatch(s, 2):
            try:
                return float(int(s[2:], radix[0]))
            except OverflowError:
                return math.inf
    return math.nan


def to_number(value: Any) -> float:
    """`Number(value)` for a JSON value (arrays go through their string form, objects are NaN)."""
    if value is None or value is False:
        return 0.0
    if value is True:
        return 1.0
    t = type(value)
    if t is int:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if t is float:
        return float(value)
    if t is str:
        return string_to_number(value)
    if t is list:
        return string_to_number(to_string(value))
    return math.nan


def to_string(value: Any) -> str:
    """`String(value)` for a JSON value: arrays join with commas (null → ""), objects are
    `[object Object]`."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if t is int:
        return int_to_string(value)
    if t is float:
        return number_to_string(value)
    if t is list or t is tuple:
        return ",".join("" if v is None else to_string(v) for v in value)
    return "[object Object]"


# ---------------------------------------------------------------------------------------------
# JSON.stringify


def is_array_index(key: str) -> bool:
    """A canonical array index ("0", "7", not "07"): JavaScript objects list these keys first."""
    return (
        key.isdigit()
        and key.isascii()
        and (key == "0" or key[0] != "0")
        and len(key) <= 10
        and int(key) <= _MAX_ARRAY_INDEX
    )


def js_key_order(obj: dict[str, Any]) -> list[str]:
    """The keys of `obj` in JavaScript's property order: integer-like keys ascending, then the
    rest in insertion order (what `Object.keys` on the parsed JSON would return)."""
    index_keys = [k for k in obj if is_array_index(k)]
    if not index_keys:
        return list(obj)
    index_keys.sort(key=int)
    return index_keys + [k for k in obj if not is_array_index(k)]


_SURROGATE = re.compile("[\ud800-\udfff]")


def quote(text: str) -> str:
    """A JSON string literal as JavaScript writes it: non-ASCII as is, lone surrogates as
    `\\udxxx`, control characters as `\\n`-style or lowercase `\\u00xx` escapes."""
    if not text.isascii() and _SURROGATE.search(text):
        # A high+low pair held as two code points is one character to JavaScript: join pairs,
        # then escape what is left alone.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", encode_basestring(text))
    return encode_basestring(text)


def _stringify_slow(value: Any) -> str:
    t = type(value)
    if t is str:
        return quote(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if t is int:
        return int_to_string(value)
    if t is float:
        return number_to_string(value) if math.isfinite(value) else "null"
    if t is list or t is tuple:
        return "[" + ",".join(_stringify_slow(v) for v in value) + "]"
    if t is dict:
        if any(type(k) is not str for k in value):
            value = {to_string(k): v for k, v in value.items()}
        keys = js_key_order(value) if any(k[:1].isdigit() for k in value) else value
        return "{" + ",".join(quote(k) + ":" + _stringify_slow(value[k]) for k in keys) + "}"
    return quote(to_string(value))


# Types orjson writes exactly as JSON.stringify does (integers: with OPT_STRICT_INTEGER, orjson
# refuses the ones beyond 2**53 that JavaScript would round, and the exact path takes those).
_PLAIN_SCALARS: Final = frozenset({str, int, bool, type(None)})


def _plain_values(values: Iterable[Any]) -> bool:
    for v in values:
        t = type(v)
        if t in _PLAIN_SCALARS:
            continue
        if t is dict:
            if _plain_dict(v):
                continue
            return False
        if t is list and _plain_values(v):
            continue
        return False
    return True


def _plain_dict(value: dict[Any, Any]) -> bool:
    for k, v in value.items():
        # Only all-digit keys can be array indices, the keys JavaScript moves to the front. A
        # non-string key raises AttributeError here: the caller takes the exact path for it.
        if k.isdigit():
            return False
        t = type(v)
        if t in _PLAIN_SCALARS:
            continue
        if t is dict:
            if _plain_dict(v):
                continue
            return False
        if t is list and _plain_values(v):
            continue
        return False
    return True


def stringify(value: Any) -> str:
    """`JSON.stringify(value)` for a JSON value: compact, insertion order (integer-like keys
    first, as JavaScript objects order them), non-ASCII unescaped, `1.0` as `1`.

    orjson writes the same bytes for strings, booleans, null and safe integers in objects whose
    keys are not integer-like, which is what nested event properties nearly always are; a cheap
    type walk checks that, and everything else (floats, huge integers, integer-like keys, lone
    surrogates) takes the exact path.
    """
    t = type(value)
    try:
        if (t is dict and _plain_dict(value)) or (t is list and _plain_values(value)):
            return orjson.dumps(value, option=_STRICT_INTEGER).decode()
    except (AttributeError, TypeError):  # a non-string key, a huge integer, a lone surrogate
        pass
    return _stringify_slow(value)


_STRICT_INTEGER: Final = orjson.OPT_STRICT_INTEGER


# ---------------------------------------------------------------------------------------------
# Handlebars


_HTML_ESCAPES: Final = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "=": "&#x3D;"}
)


def html_escape(text: str) -> str:
    """Handlebars' `{{value}}` escaping (Python's `html.escape` leaves `` ` `` and `=` alone)."""
    return text.translate(_HTML_ESCAPES)


def trim(text: str) -> str:
    """`String.prototype.trim`."""
    return text.strip(JS_WHITESPACE)


# ---------------------------------------------------------------------------------------------
# Object helpers


def own_entries(value: Any) -> list[tuple[str, Any]]:
    """`Object.keys(value).map(k => [k, value[k]])` for a JSON value.

    Strings and arrays have index keys, numbers and booleans have none. RudderStack applies this
    to `traits`/`properties` whatever their type, so a string `properties` becomes per-character
    entries in the rudderstack profile.
    """
    t = type(value)
    if t is dict:
        return list(value.items())
    if t is list or t is str:
        return [(str(i), v) for i, v in enumerate(value)]
    return []


_UNSAFE_KEYS: Final = frozenset({"__proto__", "constructor", "prototype"})


def split_path(key: str) -> list[str]:
    """Split a key the way the set-value package does: on dots, with `\\.` as a literal dot."""
    if "\\" not in key:
        return key.split(".")
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(key):
        c = key[i]
        if c == "\\" and i + 1 < len(key) and key[i + 1] == ".":
            current.append(".")
            i += 2
            continue
        if c == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def set_path(target: dict[str, Any], key: str, value: Any) -> None:
    """`set(target, key, value)` from the set-value package, without mutating shared input.

    A dotted key writes a nested path (`"a.b"` → `{"a": {"b": value}}`), replacing a non-object
    on the way. Containers met on the way are copied before they are written to, because in
    RudderStack they are the event's own objects and the transform must not change its input.
    """
    if "." not in key:
        if key not in _UNSAFE_KEYS:
            target[key] = value
        return
    parts = split_path(key)
    if any(p in _UNSAFE_KEYS for p in parts):
        return
    node: Any = target
    for part in parts[:-1]:
        child = _child(node, part)
        if type(child) is dict:
            child = dict(child)
        elif type(child) is list:
            child = list(child)
        else:
            child = {}
        _assign(node, part, child)
        node = child
    _assign(node, parts[-1], value)


def _child(node: Any, key: str) -> Any:
    if type(node) is dict:
        return node.get(key)
    if is_array_index(key) and int(key) < len(node):
        return node[int(key)]
    return None


def _assign(node: Any, key: str, value: Any) -> None:
    if type(node) is dict:
        node[key] = value
    elif is_array_index(key):
        i = int(key)
        if i < len(node):
            node[i] = value
        elif i == len(node):
            node.append(value)
    # A non-index property on an array is invisible to JSON.stringify, and an index past the end
    # would make a sparse array of up to 2**32 holes: neither has anything worth keeping.

"""Our own envelope's Avro bytes → the message, in one pass: the decode stage's fast path.

fastavro's generic reader builds the envelope dict (every field, empty ones included) through
its file-object interface, and `to_message` then walks that dict again to drop the empty fields
and parse the JSON text ones: about 14 µs per record of the benchmark corpus, the largest single
cost of the service. The envelope's shape is ours and fixed (every field a string, or the union
string | long | double | boolean, see `schema._classify`), so its reader is generated from the
schema file at import: per field, a length byte and a slice. The JSON text fields go to orjson
as bytes (no str made first) and empty fields are never materialised: about 6.5 µs for the same
record (`bench/decode.py`).

This path only says "this is the message" or "not mine" (None): anything unexpected (truncated
bytes, an unknown branch, bad UTF-8, broken JSON, bytes left over, an int beyond 64 bits) makes
the caller read the value again with fastavro, whose result, or precise error, stands. So the
fast path can never accept what fastavro refuses, nor word an error differently;
tests/codec/test_reader.py checks it equals fastavro + `to_message` on generated messages and
on damaged bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

import orjson

from .schema import EXTRA_FIELD, JSON_FIELDS, SCALAR_FIELDS, SCHEMA

_DOUBLE: Final = struct.Struct("<d").unpack_from
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_ABSENT: Final = object()  # `extra` empty: nothing to merge


class _NotOursError(Exception):
    """Raised inside `read_message` for bytes the fast path leaves to fastavro."""


def _long(value: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint at `pos` (Avro int/long) and the position after it."""
    b = value[pos]
    pos += 1
    n = b & 0x7F
    shift = 7
    while b & 0x80:
        if shift > 63:
            raise _NotOursError  # longer than a 64-bit varint
        b = value[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


def _length(value: bytes, pos: int) -> tuple[int, int]:
    """A string length that is not one small even byte: several bytes, or negative (refused)."""
    n, pos = _long(value, pos)
    if n < 0:
        raise _NotOursError
    return n, pos


def _scalar(value: bytes, pos: int, branch: int) -> tuple[Any, int]:
    """The long, double or boolean branch (zigzag index 1, 2, 3) of a scalar-union field."""
    if branch == 2:
        number, pos = _long(value, pos)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise _NotOursError
        return number, pos
    if branch == 4:
        return _DOUBLE(value, pos)[0], pos + 8
    if branch == 6 and value[pos] <= 1:
        return value[pos] == 1, pos + 1
    raise _NotOursError


def _source() -> str:
    """The reader's source: one block per field of schemas/event.avsc, in order.

    Generated (like a dataclass's `__init__`) rather than a loop over the fields: the loop's own
    bookkeeping, a tuple unpacked and the field's kind tested 22 times per record, cost more
    than reading the mostly empty fields themselves. Each block reads the field's bytes and
    stores the value where the message wants it: a text field as str, a JSON text field parsed
    by orjson straight from the bytes, `extra` kept to merge last, a scalar-union field's
    number or boolean branch by `_scalar`; an empty string is an absent field, not stored.
    """
    lines = [
        "def _read(value, pos):",
        "    message = {}",
        "    extra = _ABSENT",
        "    size = len(value)",
    ]
    for field in SCHEMA["fields"]:
        name = field["name"]
        indent = "    "
        if name in SCALAR_FIELDS:
            lines += [
                "    branch = value[pos]",
                "    pos += 1",
                "    if branch:",
                f"        message[{name!r}], pos = _scalar(value, pos, branch)",
                "    else:",
            ]
            indent = "        "
        if name in JSON_FIELDS:
            store = f"message[{name!r}] = loads(value[pos:end])"
        elif name == EXTRA_FIELD:
            store = "extra = loads(value[pos:end])"
        else:
            store = f"message[{name!r}] = value[pos:end].decode()"
        block = [
            "n = value[pos]",
            "pos += 1",
            "if n:",
            "    if n & 0x81:  # a length of several bytes, or a negative one",
            "        n, pos = _length(value, pos - 1)",
            "    else:",
            "        n >>= 1",
            "    if n:",
            "        end = pos + n",
            "        if end > size:",
            "            raise _NotOursError",
            f"        {store}",
            "        pos = end",
        ]
        lines += [indent + line for line in block]
    lines += [
        "    if pos != size:",
        "        raise _NotOursError",
        "    if extra is not _ABSENT:",
        "        if type(extra) is not dict:",
        "            raise _NotOursError",
        "        for key, item in extra.items():",
        "            message.setdefault(key, item)",
        "    return message",
    ]
    return "\n".join(lines) + "\n"


def _compile() -> Callable[[bytes, int], dict[str, Any]]:
    namespace: dict[str, Any] = {
        "loads": orjson.loads,
        "_ABSENT": _ABSENT,
        "_NotOursError": _NotOursError,
        "_length": _length,
        "_scalar": _scalar,
    }
    # Code from our own schema file's field names (repr-quoted), nothing from a record or a registry.
    exec(compile(_source(), f"<{__name__} reader of {SCHEMA['name']}>", "exec"), namespace)
    read: Callable[[bytes, int], dict[str, Any]] = namespace["_read"]
    return read


_read: Final = _compile()


def read_message(value: bytes, start: int = 0) -> dict[str, Any] | None:
    """The message in the envelope body `value[start:]`, or None if fastavro should decide."""
    try:
        return _read(value, start)
    except (_NotOursError, IndexError, ValueError, struct.error):  # orjson's and UTF-8 errors are ValueErrors
        return None

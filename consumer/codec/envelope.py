"""RudderStack message ⇄ Avro envelope record.

The envelope keeps each named field in its Avro field when the value fits it and everything else
in `extra`, so `to_message(to_envelope(m)) == m` for every JSON object `m`: top-level numbers stay
numbers (a numeric `userId` must reach the transform as a number), explicit nulls stay null,
unknown keys survive. An empty string in a field means "absent", which is why a real empty
string value travels in `extra` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from .errors import DecodeError, EnvelopeError
from .schema import EXTRA_FIELD, FIELD_NAMES, JSON_FIELDS, SCALAR_FIELDS, TEXT_FIELDS

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_EMPTY: Final[dict[str, Any]] = dict.fromkeys(FIELD_NAMES, "")


def _dumps(key: str, value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise EnvelopeError(f"{key}: not JSON-serialisable ({exc})") from None


def _fits_scalar(value: Any) -> bool:
    """Whether the scalar union (string, long, double, boolean) holds `value` exactly."""
    kind = type(value)
    if kind is str:
        return len(value) > 0
    if kind is int:
        return bool(_INT64_MIN <= value <= _INT64_MAX)
    return kind is bool or kind is float


def to_envelope(message: Mapping[str, Any]) -> dict[str, Any]:
    """The Avro envelope record for one RudderStack message (a JSON object)."""
    if not isinstance(message, Mapping):
        raise EnvelopeError(f"an event must be a JSON object, not {type(message).__name__}")
    envelope = dict(_EMPTY)
    extra: dict[str, Any] = {}
    for key, value in message.items():
        if key in JSON_FIELDS:
            envelope[key] = _dumps(key, value)
        elif key in SCALAR_FIELDS:
            if _fits_scalar(value):
                envelope[key] = value
            else:
                extra[key] = value
        elif key in TEXT_FIELDS and type(value) is str and value:
            envelope[key] = value
        else:
            extra[key] = value
    if extra:
        envelope[EXTRA_FIELD] = _dumps(EXTRA_FIELD, extra)
    return envelope


def _loads(field: str, text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(
            "bad_json_field", f"field {field!r} is not valid JSON text: {exc.msg} at char {exc.pos}"
        ) from None


def to_message(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The RudderStack message the transform consumes, rebuilt from a decoded envelope.

    Raises `DecodeError("bad_json_field")` when a JSON text field does not parse or `extra` is
    not a JSON object: the record decoded, but its content is broken, so it is dead-lettered.
    One pass, the JSON fields parsed in line (this runs once per consumed record); a field that
    does not parse is found again by `_loads` for the error message.
    """
    message: dict[str, Any] = {}
    extra = None
    loads, json_fields = orjson.loads, JSON_FIELDS
    try:
        for key, value in envelope.items():
            if value is None or value == "":
                continue
            if key in json_fields:
                message[key] = loads(value)
            elif key == EXTRA_FIELD:
                extra = value
            else:
                message[key] = value
        rest = {} if extra is None else loads(extra)
    except orjson.JSONDecodeError:
        for key, value in envelope.items():
            if value and (key in json_fields or key == EXTRA_FIELD):
                _loads(key, value)
        raise  # pragma: no cover - one of the fields above raised already
    if not isinstance(rest, dict):
        raise DecodeError(
            "bad_json_field", f"field 'extra' must hold a JSON object, not {type(rest).__name__}"
        )
    for key, value in rest.items():
        message.setdefault(key, value)
    return message

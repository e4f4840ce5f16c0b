"""Reading CleverTap's HTTP 200 reply to `/1/upload`, record by record.

A 200 may carry per-record failures in `unprocessed`, each with a code, an error text ending in
"Skipped record number : k" and (usually) the record itself. The one real reply on file numbers
the only record of a one-record request 1, so `k` is read as 1-based; 0-based is tried second.
When the entry carries the record, the candidate must agree with it: equal, or equal on the
fields that identify a record (type, identifiers, event name, and ts when one was sent) in
case CleverTap echoes a normalised copy. Without an index match, an entry is placed by content alone. An entry that
still fits no record is *unmatched*: the caller cannot tell which record failed.

A reply that is not a JSON object, or whose status is not "success" with nothing in
`unprocessed`, cannot be trusted to say what was accepted: `BadReplyError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

TRANSIENT_CODE = 555  # "miscellaneous server error": the one per-record code worth re-sending
_RECORD_NUMBER = re.compile(r"Skipped record number\s*:\s*(\d+)")
_IDENTIFYING = ("type", "identity", "objectId", "FBID", "GPID", "evtName", "ts")
_MAX_TEXT = 500


class BadReplyError(Exception):
    """The 200 reply's body does not say which records were accepted."""


@dataclass(frozen=True, slots=True)
class Rejection:
    code: int | None
    message: str


@dataclass(slots=True)
class Reading:
    """Indices are positions in the request that was sent."""

    rejected: dict[int, Rejection] = field(default_factory=dict)  # permanent: dead-letter
    transient: dict[int, Rejection] = field(default_factory=dict)  # 555: send again
    unmatched: list[Rejection] = field(default_factory=list)  # fits no record of the request

    def failed(self) -> set[int]:
        return set(self.rejected) | set(self.transient)


def _as_record(value: Any) -> dict[str, Any] | None:
    """The echoed record, as an object (some replies carry it as a JSON string)."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None


class _Sent:
    """The request's records, parsed only when an entry needs comparing."""

    def __init__(self, bodies: Sequence[bytes]) -> None:
        self._bodies = bodies
        self._parsed: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._bodies)

    def __getitem__(self, index: int) -> Any:
        if index not in self._parsed:
            self._parsed[index] = orjson.loads(self._bodies[index])
        return self._parsed[index]


def _same(echo: dict[str, Any], sent: Any) -> bool:
    if echo == sent:
        return True
    # A record sent without ts may come back stamped with the time CleverTap received it.
    return isinstance(sent, dict) and all(
        echo.get(k) == sent.get(k) for k in _IDENTIFYING if k != "ts" or "ts" in sent
    )


def _locate(entry: dict[str, Any], sent: _Sent, taken: set[int]) -> int | None:
    text = entry.get("error")
    match = _RECORD_NUMBER.search(text) if isinstance(text, str) else None
    number = int(match.group(1)) if match else None
    echo = _as_record(entry.get("record"))
    candidates = [i for i in ((number - 1, number) if number is not None else ()) if 0 <= i < len(sent)]
    if echo is None:
        # Nothing to check the index against: trust it, read 1-based.
        return candidates[0] if candidates and candidates[0] not in taken else None
    for i in candidates:
        if i not in taken and _same(echo, sent[i]):
            return i
    for i in range(len(sent)):
        if i not in taken and sent[i] == echo:
            return i
    return None


def _code(entry: dict[str, Any]) -> int | None:
    code = entry.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return None


def read_reply(content: bytes, sent: Sequence[bytes]) -> Reading:
    """Which records of the request `sent` CleverTap did not take, and why."""
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise BadReplyError(f"body is not JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise BadReplyError("body is not a JSON object")
    status = doc.get("status")
    entries = doc.get("unprocessed") or []
    if not isinstance(entries, list):
        raise BadReplyError("unprocessed is not a list")
    if status != "success" and not entries:
        raise BadReplyError(f"status {str(status)[:40]!r} without unprocessed records")

    records = _Sent(sent)
    reading = Reading()
    taken: set[int] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            reading.unmatched.append(Rejection(None, "unprocessed entry is not an object"))
            continue
        code = _code(entry)
        text = entry.get("error")
        rejection = Rejection(code, str(text)[:_MAX_TEXT] if text else f"CleverTap code {code}")
        index = _locate(entry, records, taken)
        if index is None:
            reading.unmatched.append(rejection)
            continue
        taken.add(index)
        if code == TRANSIENT_CODE:
            reading.transient[index] = rejection
        else:
            reading.rejected[index] = rejection
    return reading

"""Points in time as operators type them: ISO-8601, epoch seconds or milliseconds, or `2h` ago."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MS_THRESHOLD = 10**11  # epoch numbers above this are milliseconds (10**11 s is the year 5138)


def parse_time(text: str, now_ms: int | None = None) -> int:
    """Epoch milliseconds for `text`.

    Accepted: ISO-8601 (`2026-11-20T08:00:00Z`, `2026-11-20`; no offset means UTC), epoch
    seconds or milliseconds (`1795400000`, `1795400000000`), or a duration before now
    (`90s`, `30m`, `2h`, `7d`, `1w`). Raises ValueError saying what was expected.
    """
    value = text.strip()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    relative = _RELATIVE.match(value)
    if relative:
        return now - int(relative.group(1)) * _UNIT_S[relative.group(2)] * 1000
    if value.isdigit():
        n = int(value)
        return n if n >= _MS_THRESHOLD else n * 1000
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use ISO-8601 (2026-11-20T08:00:00Z), epoch seconds or ms, "
            "or a duration ago such as 30m, 2h, 7d"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)

"""`Date.parse` as V8 (Node.js) implements it, for the rudderstack profile's `ts` conversion.

RudderStack turns a non-numeric `ts` into epoch seconds with `new Date(ts)`. V8 first tries the
ECMAScript date-time format (`2021-03-10T11:59:22.080Z`, date-only forms as UTC) and then falls
back to its permissive legacy parser, which also takes `2021-03-10 11:59:22`,
`Wed, 10 Mar 2021 11:59:22 GMT`, `03/10/2021`, even `"0"` (1 January 2000). To give the same
`ts` for the same input, this module follows the structure of V8's date parser: a tokenizer, an
ES5 pass, then the legacy pass over the remaining tokens, and composers for day, time and zone;
dev/js_diff.py compares it with Node on random strings.

Local time: a date-time without an offset is local time in JavaScript. RudderStack's transformer
runs in containers on UTC, so local time is taken to be UTC here (the transform has no clock and
no time zone of its own).
"""

from __future__ import annotations

from typing import Final

from ._js import JS_WHITESPACE

_NONE: Final = -(2**31)  # V8's kNone
_MAX_TIME_MS: Final = 8.64e15  # ECMAScript TimeClip bound
_MAX_SIGNIFICANT_DIGITS: Final = 9
_POWERS_OF_TEN: Final[tuple[int, ...]] = (1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000)

# token kinds
_END, _NUM, _SYM, _WORD, _SPACE, _UNKNOWN, _INVALID = range(7)
# keyword types
_MONTH, _AM_PM, _ZONE, _T_SEP, _NOT_A_KEYWORD = range(5)

# (3-letter lowercase prefix padded with NUL) → (type, value); longer words match months only
_KEYWORDS: Final[dict[str, tuple[int, int]]] = {
    "jan": (_MONTH, 1),
    "feb": (_MONTH, 2),
    "mar": (_MONTH, 3),
    "apr": (_MONTH, 4),
    "may": (_MONTH, 5),
    "jun": (_MONTH, 6),
    "jul": (_MONTH, 7),
    "aug": (_MONTH, 8),
    "sep": (_MONTH, 9),
    "oct": (_MONTH, 10),
    "nov": (_MONTH, 11),
    "dec": (_MONTH, 12),
    "am\0": (_AM_PM, 0),
    "pm\0": (_AM_PM, 12),
    "ut\0": (_ZONE, 0),
    "utc": (_ZONE, 0),
    "z\0\0": (_ZONE, 0),
    "gmt": (_ZONE, 0),
    "cdt": (_ZONE, -5),
    "cst": (_ZONE, -6),
    "edt": (_ZONE, -4),
    "est": (_ZONE, -5),
    "mdt": (_ZONE, -6),
    "mst": (_ZONE, -7),
    "pdt": (_ZONE, -7),
    "pst": (_ZONE, -8),
    "t\0\0": (_T_SEP, 0),
}

_WS: Final = frozenset(JS_WHITESPACE)

# A token is (kind, value, length); for words value is (keyword type, keyword value).
Token = tuple[int, object, int]
_END_TOKEN: Final[Token] = (_END, 0, 0)
_INVALID_TOKEN: Final[Token] = (_INVALID, 0, 0)


def _tokenize(s: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if "0" <= c <= "9":
            j = i
            while j < n and "0" <= s[j] <= "9":
                j += 1
            significant = s[i:j].lstrip("0")[:_MAX_SIGNIFICANT_DIGITS]
            tokens.append((_NUM, int(significant) if significant else 0, j - i))
            i = j
        elif c in ":-+.)":
            tokens.append((_SYM, c, 1))
            i += 1
        elif c >= "A" and c not in _WS:
            j = i
            while j < n and s[j] >= "A" and s[j] not in _WS:
                j += 1
            prefix = "".join(chr(ord(ch) | 0x20) for ch in s[i : min(j, i + 3)]).ljust(3, "\0")
            kind, value = _KEYWORDS.get(prefix, (_NOT_A_KEYWORD, 0))
            if j - i > 3 and kind != _MONTH:
                kind, value = _NOT_A_KEYWORD, 0
            tokens.append((_WORD, (kind, value), j - i))
            i = j
        elif c in _WS:
            j = i
            while j < n and s[j] in _WS:
                j += 1
            tokens.append((_SPACE, 0, j - i))
            i = j
        elif c == "(":
            balance = 0
            while True:
                if s[i] == ")":
                    balance -= 1
                elif s[i] == "(":
                    balance += 1
                i += 1
                if balance <= 0 or i >= n:
                    break
            tokens.append((_UNKNOWN, 0, 0))
        else:
            tokens.append((_UNKNOWN, 0, 1))
            i += 1
    return tokens


class _Scanner:
    __slots__ = ("_pos", "_tokens")

    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._pos = 0

    def peek(self) -> Token:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else _END_TOKEN

    def next(self) -> Token:
        token = self.peek()
        self._pos += 1
        return token

    def skip_symbol(self, symbol: str) -> bool:
        token = self.peek()
        if token[0] == _SYM and token[1] == symbol:
            self._pos += 1
            return True
        return False


def _is_number(t: Token, length: int | None = None) -> bool:
    return t[0] == _NUM and (length is None or t[2] == length)


def _num(t: Token) -> int:
    value = t[1]
    assert type(value) is int
    return int(value)


def _is_sign(t: Token) -> bool:
    return t[0] == _SYM and t[1] in ("+", "-")


def _keyword(t: Token) -> tuple[int, int]:
    value = t[1]
    assert isinstance(value, tuple)
    return value


def _is_z(t: Token) -> bool:
    return t[0] == _WORD and t[2] == 1 and _keyword(t) == (_ZONE, 0)


def _between(x: int, lo: int, hi: int) -> bool:
    return lo <= x <= hi


def _is_month(x: int) -> bool:
    return _between(x, 1, 12)


def _is_day(x: int) -> bool:
    return _between(x, 1, 31)


def _is_hour(x: int) -> bool:
    return _between(x, 0, 23)


def _is_minute(x: int) -> bool:
    return _between(x, 0, 59)


class _Day:
    __slots__ = ("comp", "iso", "named_month")

    def __init__(self) -> None:
        self.comp: list[int] = []
        self.named_month = _NONE
        self.iso = False

    def add(self, n: int) -> bool:
        if len(self.comp) < 3:
            self.comp.append(n)
            return True
        return False

    def write(self) -> tuple[int, int, int] | None:
        if not self.comp:
            return None
        comp = self.comp + [1] * (3 - len(self.comp))
        year = 0  # legacy default: 0, i.e. 2000
        if self.named_month == _NONE:
            if self.iso or not _is_day(comp[0]):
                year, month, day = comp
            else:
                month, day, year = comp
        else:
            month = self.named_month
            if not _is_day(comp[0]):
                year, day = comp[0], comp[1]
            else:
                day, year = comp[0], comp[1]
        if not self.iso:
            if _between(year, 0, 49):
                year += 2000
            elif _between(year, 50, 99):
                year += 1900
        if not _is_month(month) or not _is_day(day):
            return None
        return year, month, day


class _Time:
    __slots__ = ("comp", "hour_offset")

    def __init__(self) -> None:
        self.comp: list[int] = []
        self.hour_offset = _NONE

    def empty(self) -> bool:
        return not self.comp

    def add(self, n: int) -> bool:
        if len(self.comp) < 4:
            self.comp.append(n)
            return True
        return False

    def add_final(self, n: int) -> bool:
        if not self.add(n):
            return False
        self.comp += [0] * (4 - len(self.comp))
        return True

    def expecting(self, n: int) -> bool:
        i = len(self.comp)
        return (i == 1 and _is_minute(n)) or (i == 2 and _is_minute(n)) or (i == 3 and _between(n, 0, 999))

    def write(self) -> tuple[int, int, int, int] | None:
        hour, minute, second, ms = self.comp + [0] * (4 - len(self.comp))
        if self.hour_offset != _NONE:
            if not _between(hour, 0, 12):
                return None
            hour = hour % 12 + self.hour_offset
        if not (_is_hour(hour) and _is_minute(minute) and _is_minute(second) and _between(ms, 0, 999)) and (
            hour != 24 or minute != 0 or second != 0 or ms != 0
        ):
            return None
        return hour, minute, second, ms


class _Zone:
    __slots__ = ("hour", "minute", "sign")

    def __init__(self) -> None:
        self.sign = _NONE
        self.hour = _NONE
        self.minute = _NONE

    def set(self, offset_hours: int) -> None:
        self.sign = -1 if offset_hours < 0 else 1
        self.hour = abs(offset_hours)
        self.minute = 0

    def empty(self) -> bool:
        return self.hour == _NONE

    def is_utc(self) -> bool:
        return self.hour == 0 and self.minute == 0

    def expecting(self, n: int) -> bool:
        return self.hour != _NONE and self.minute == _NONE and _is_minute(n)

    def offset_seconds(self) -> int | None:
        """Seconds east of UTC; None for local time (taken to be UTC)."""
        if self.sign == _NONE:
            return None
        hour = 0 if self.hour == _NONE else self.hour
        minute = 0 if self.minute == _NONE else self.minute
        total = hour * 3600 + minute * 60
        return -total if self.sign < 0 else total


def _read_milliseconds(t: Token) -> int:
    number, length = _num(t), t[2]
    if length == 1:
        return number * 100
    if length == 2:
        return number * 10
    if length > 3:
        length = min(length, _MAX_SIGNIFICANT_DIGITS)
        return number // _POWERS_OF_TEN[length - 3]
    return number


def _parse_es5(scanner: _Scanner, day: _Day, time: _Time, zone: _Zone) -> Token:
    """The ECMAScript date-time format; returns the first token it could not use."""
    if _is_sign(scanner.peek()):
        sign_token = scanner.next()
        if not _is_number(scanner.peek(), 6):
            return sign_token
        year = _num(scanner.next())
        if sign_token[1] == "-" and year == 0:
            return sign_token
        day.add(-year if sign_token[1] == "-" else year)
    elif _is_number(scanner.peek(), 4):
        day.add(_num(scanner.next()))
    else:
        return scanner.next()
    if scanner.skip_symbol("-"):
        if not _is_number(scanner.peek(), 2) or not _is_month(_num(scanner.peek())):
            return scanner.next()
        day.add(_num(scanner.next()))
        if scanner.skip_symbol("-"):
            if not _is_number(scanner.peek(), 2) or not _is_day(_num(scanner.peek())):
                return scanner.next()
            day.add(_num(scanner.next()))
    nxt = scanner.peek()
    if not (nxt[0] == _WORD and _keyword(nxt)[0] == _T_SEP):
        if nxt[0] != _END:
            return scanner.next()
    else:
        scanner.next()
        if not _is_number(scanner.peek(), 2) or not _between(_num(scanner.peek()), 0, 24):
            return _INVALID_TOKEN
        hour_is_24 = _num(scanner.peek()) == 24
        time.add(_num(scanner.next()))
        if not scanner.skip_symbol(":"):
            return _INVALID_TOKEN
        if (
            not _is_number(scanner.peek(), 2)
            or not _is_minute(_num(scanner.peek()))
            or (hour_is_24 and _num(scanner.peek()) > 0)
        ):
            return _INVALID_TOKEN
        time.add(_num(scanner.next()))
        if scanner.skip_symbol(":"):
            if (
                not _is_number(scanner.peek(), 2)
                or not _is_minute(_num(scanner.peek()))
                or (hour_is_24 and _num(scanner.peek()) > 0)
            ):
                return _INVALID_TOKEN
            time.add(_num(scanner.next()))
            if scanner.skip_symbol("."):
                if not _is_number(scanner.peek()) or (hour_is_24 and _num(scanner.peek()) > 0):
                    return _INVALID_TOKEN
                time.add(_read_milliseconds(scanner.next()))
        if _is_z(scanner.peek()):
            scanner.next()
            zone.set(0)
        elif _is_sign(scanner.peek()):
            zone.sign = 1 if scanner.next()[1] == "+" else -1
            if _is_number(scanner.peek(), 4):
                hourmin = _num(scanner.next())
                hour, minute = divmod(hourmin, 100)
                if not _is_hour(hour) or not _is_minute(minute):
                    return _INVALID_TOKEN
                zone.hour, zone.minute = hour, minute
            else:
                if not _is_number(scanner.peek(), 2) or not _is_hour(_num(scanner.peek())):
                    return _INVALID_TOKEN
                zone.hour = _num(scanner.next())
                if not scanner.skip_symbol(":"):
                    return _INVALID_TOKEN
                if not _is_number(scanner.peek(), 2) or not _is_minute(_num(scanner.peek())):
                    return _INVALID_TOKEN
                zone.minute = _num(scanner.next())
        if scanner.peek()[0] != _END:
            return _INVALID_TOKEN
    if zone.empty() and time.empty():
        zone.set(0)  # date-only forms are UTC
    day.iso = True
    return _END_TOKEN


def _parse_legacy(first: Token, scanner: _Scanner, day: _Day, time: _Time, zone: _Zone) -> bool:
    has_read_number = bool(day.comp)
    token = first
    while token[0] != _END:
        kind = token[0]
        if kind == _NUM:
            has_read_number = True
            n = _num(token)
            if scanner.skip_symbol(":"):
                if scanner.skip_symbol(":"):
                    if not time.empty():
                        return False
                    time.add(n)
                    time.add(0)
                else:
                    if not time.add(n):
                        return False
                    if scanner.peek()[0] == _SYM and scanner.peek()[1] == ".":
                        scanner.next()
            elif scanner.skip_symbol(".") and time.expecting(n):
                time.add(n)
                if not _is_number(scanner.peek()):
                    return False
                time.add_final(_read_milliseconds(scanner.next()))
            elif zone.expecting(n):
                zone.minute = n
            elif time.expecting(n):
                time.add_final(n)
                peek = scanner.peek()
                if not (peek[0] in (_END, _SPACE) or _is_z(peek) or _is_sign(peek)):
                    return False
            else:
                if not day.add(n):
                    return False
                scanner.skip_symbol("-")
        elif kind == _WORD:
            kw_type, kw_value = _keyword(token)
            if kw_type == _AM_PM and not time.empty():
                time.hour_offset = kw_value
            elif kw_type == _MONTH:
                day.named_month = kw_value
                scanner.skip_symbol("-")
            elif kw_type == _ZONE and has_read_number:
                zone.set(kw_value)
            else:
                if has_read_number:
                    return False
                if _is_number(scanner.peek()):
                    return False
        elif _is_sign(token) and (zone.is_utc() or not time.empty()):
            zone.sign = 1 if token[1] == "+" else -1
            n, length = 0, 0
            if _is_number(scanner.peek()):
                number = scanner.next()
                n, length = _num(number), number[2]
            has_read_number = True
            peek = scanner.peek()
            if peek[0] == _SYM and peek[1] == ":":
                zone.hour, zone.minute = n, _NONE
            elif length in (1, 2):
                zone.hour, zone.minute = n, 0
            elif length in (3, 4):
                zone.hour, zone.minute = divmod(n, 100)
            else:
                return False
        elif (_is_sign(token) or (kind == _SYM and token[1] == ")")) and has_read_number:
            return False
        token = scanner.next()
    return True


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar; `day` may overflow the month,
    as in ECMAScript MakeDay (31 February is 3 March)."""
    y = year - (1 if month <= 2 else 0)
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_date_ms(text: str) -> int | None:
    """`Date.parse(text)` in milliseconds since the epoch, or None where JavaScript gives NaN."""
    scanner = _Scanner(_tokenize(text))
    day, time, zone = _Day(), _Time(), _Zone()
    rest = _parse_es5(scanner, day, time, zone)
    if rest[0] == _INVALID:
        return None
    if not _parse_legacy(rest, scanner, day, time, zone):
        return None
    ymd = day.write()
    hms = time.write()
    if ymd is None or hms is None or not -1_000_000 <= ymd[0] <= 1_000_000:
        return None
    year, month, dom = ymd
    hour, minute, second, ms = hms
    millis = (
        _days_from_civil(year, month, dom) * 86_400_000
        + hour * 3_600_000
        + minute * 60_000
        + second * 1000
        + ms
    )
    offset = zone.offset_seconds()
    if offset is not None:
        millis -= offset * 1000
    if abs(millis) > _MAX_TIME_MS:
        return None
    return millis

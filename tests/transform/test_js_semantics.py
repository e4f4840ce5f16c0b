"""JavaScript semantics the rudderstack profile depends on (expected values follow ECMAScript)."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from consumer.transform._js import (
    html_escape,
    own_entries,
    present,
    set_path,
    stringify,
    to_number,
    to_string,
    trim,
    truthy,
)
from consumer.transform._js_date import parse_date_ms


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (False, False),
        (0, False),
        (0.0, False),
        ("", False),
        ({}, True),
        ([], True),
        ("0", True),
        (-1, True),
    ],
)
def test_truthiness_is_javascripts(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"), [(0, True), (False, True), ("", False), (None, False), ("x", True)]
)
def test_a_value_counts_when_truthy_or_exactly_zero_or_false(value: Any, expected: bool) -> None:
    assert present(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (123456789.123, "123456789.123"),
        (2.0**60, "1152921504606847000"),
        (12345678901234567890, "12345678901234567000"),
        (True, "true"),
        (None, "null"),
        ([1, [2, 3], None, "a"], "1,2,3,,a"),
        ({"a": 1}, "[object Object]"),
    ],
)
def test_string_conversion_prints_numbers_like_javascript(value: Any, expected: str) -> None:
    assert to_string(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0x10", 16.0),
        (" 12 ", 12.0),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("", 0.0),
        ("\u00a012\ufeff", 12.0),
        ("-Infinity", -math.inf),
        ("0b101", 5.0),
    ],
)
def test_number_conversion_accepts_javascript_numerals(text: str, expected: float) -> None:
    assert to_number(text) == expected


@pytest.mark.parametrize("text", ["1_000", "infinity", "nan", "-0x10", "0x", "12abc", "1 2"])
def test_number_conversion_refuses_what_javascript_refuses(text: str) -> None:
    assert math.isnan(to_number(text))


def test_number_of_arrays_goes_through_their_text_and_objects_are_nan() -> None:
    assert to_number([5]) == 5
    assert to_number(["7"]) == 7
    assert to_number([]) == 0
    assert math.isnan(to_number([1, 2]))
    assert math.isnan(to_number({}))
    assert to_number(None) == 0
    assert to_number(True) == 1


def test_stringify_is_compact_ordered_and_keeps_non_ascii() -> None:
    assert (
        stringify({"city": "Kraków", "zip": 31, "tags": ["a", "b"]})
        == '{"city":"Kraków","zip":31,"tags":["a","b"]}'
    )


def test_stringify_prints_integral_floats_without_fraction() -> None:
    assert stringify({"price": 14.0, "tax": 2.5, "big": 1e21, "tiny": 1e-7}) == (
        '{"price":14,"tax":2.5,"big":1e+21,"tiny":1e-7}'
    )


def test_stringify_puts_integer_like_keys_first_as_javascript_objects_do() -> None:
    assert stringify({"b": 1, "2": 2, "1": 3, "01": 4, "-1": 5}) == '{"1":3,"2":2,"b":1,"01":4,"-1":5}'


def test_stringify_escapes_controls_and_lone_surrogates_only() -> None:
    assert stringify(['\n\t\x01\x7f\u2028"\\', "\ud800"]) == '["\\n\\t\\u0001\x7f\u2028\\"\\\\","\\ud800"]'


def test_stringify_rounds_integers_beyond_double_precision() -> None:
    assert stringify({"id": 12345678901234567891}) == '{"id":12345678901234567000}'


def test_handlebars_escape_covers_backtick_and_equals() -> None:
    assert html_escape("Tom & Jerry <b>\"x\" 'y' `z` a=b") == (
        "Tom &amp; Jerry &lt;b&gt;&quot;x&quot; &#x27;y&#x27; &#x60;z&#x60; a&#x3D;b"
    )


def test_trim_uses_javascript_whitespace() -> None:
    assert trim("\ufeff\u00a0 x \u2028") == "x"
    assert trim("\x1cx") == "\x1cx"  # Python's strip() would remove \x1c; JavaScript's trim does not


def test_own_entries_of_strings_and_arrays_are_indexed() -> None:
    assert own_entries("ab") == [("0", "a"), ("1", "b")]
    assert own_entries([True]) == [("0", True)]
    assert own_entries(5) == []


def test_a_dotted_key_writes_a_nested_path_without_touching_the_input() -> None:
    inner = {"b": 1}
    target: dict[str, Any] = {"a": inner}
    snapshot = copy.deepcopy(target)
    set_path(target, "a.c", 2)
    assert target == {"a": {"b": 1, "c": 2}}
    assert inner == snapshot["a"]
    set_path(target, "x\\.y", 3)
    assert target["x.y"] == 3
    set_path(target, "a.b.c", 4)  # a non-object on the way is replaced
    assert target["a"] == {"b": {"c": 4}, "c": 2}
    set_path(target, "__proto__.polluted", 1)
    assert "__proto__" not in target


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2021-03-10T11:59:22.080Z", 1615377562080),
        ("2021-03-10", 1615334400000),  # date-only: UTC
        ("2021-03-10T11:59:22", 1615377562000),  # local time, which is UTC where RudderStack runs
        ("2021-03-10T11:59:22.123456Z", 1615377562123),
        ("2021-03-10T11:59:22+05:30", 1615357762000),
        ("2021-03-10T24:00:00Z", 1615420800000),
        ("2021-02-30", 1614643200000),  # day overflow rolls into March
        ("+002021-03-10T00:00:00Z", 1615334400000),
        ("2021-03-10 11:59:22", 1615377562000),
        ("Wed, 10 Mar 2021 11:59:22 GMT", 1615377562000),
        ("Tue Mar 10 2021 11:59:22 GMT+0530 (India Standard Time)", 1615357762000),
        ("03/10/2021", 1615334400000),
        ("March 7, 2021 10:00 PM", 1615154400000),
        ("0", 946684800000),  # the legacy parser reads a lone number as a year: 2000
        ("12", 1007164800000),
        ("2021", 1609459200000),
    ],
)
def test_date_parsing_follows_v8(text: str, ms: int) -> None:
    assert parse_date_ms(text) == ms


@pytest.mark.parametrize(
    "text",
    ["abc", " ", "2021-03-10T11:59:22+05", "20210310", "13", "2021-13-01", "+275760-09-13T00:00:00.001Z"],
)
def test_date_parsing_gives_nan_where_v8_does(text: str) -> None:
    assert parse_date_ms(text) is None

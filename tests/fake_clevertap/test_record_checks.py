"""The fake's whole-request fast path gives exactly the per-record answers."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.fake_clevertap._validate import _plain_events, check_record, check_records

_int = st.integers(-(2**63), 2**64 - 1)  # what orjson.loads can give
_char = st.characters(exclude_categories=["Cs"])  # orjson.loads never gives lone surrogates
_no_brackets = st.characters(exclude_categories=["Cs"], exclude_characters="{[")  # brackets: the slow path
_plain_text = st.text(_no_brackets, max_size=30)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    _int,
    st.integers(),  # beyond orjson's range too
    st.floats(allow_nan=False),
    st.text(_char, max_size=20),
    st.text(_char, min_size=120, max_size=200),  # over 512 bytes once non-ASCII
)
_value = st.one_of(
    _scalar,
    _scalar,
    _scalar,
    st.lists(_scalar, max_size=2),
    st.dictionaries(st.text(_char, max_size=3), _scalar),
)
_key = st.one_of(st.text(_char, min_size=1, max_size=12), st.text(_char, min_size=28, max_size=40))
_plain = st.fixed_dictionaries(
    {
        "type": st.just("event"),
        "identity": st.text(_char, min_size=1, max_size=8),
        "ts": st.integers(0, 2_000_000_000),
        "evtName": st.sampled_from(["Product Viewed", "Order Completed"]),
        "evtData": st.dictionaries(
            st.text(_no_brackets, min_size=1, max_size=10), _int | _plain_text, max_size=6
        ),
    }
)
_any = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["event", "event", "profile", "token", "click"]),
        "evtName": st.sampled_from(["Viewed", "Charged", "app launched", "", " ", 7]),
        "evtData": st.one_of(st.dictionaries(_key, _value, max_size=6), st.lists(_int, max_size=2)),
    },
    optional={
        "identity": st.sampled_from(["u1", "", None, 42]),
        "objectId": st.just("__g1"),
        "ts": st.one_of(st.integers(-5, 10**13), st.floats(allow_nan=False), st.booleans()),
    },
)
_records = st.lists(st.one_of(_plain, _plain, _plain, _any, st.text(_char, max_size=3)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(_records)
def test_the_fast_path_agrees_with_checking_each_record(records: list[Any]) -> None:
    expected = {i: e for i, r in enumerate(records) if (e := check_record(r)) is not None}
    assert check_records(records) == expected


@given(st.lists(_plain, min_size=1, max_size=20))
def test_plain_events_take_the_fast_path(events: list[dict[str, Any]]) -> None:
    assert _plain_events(events)

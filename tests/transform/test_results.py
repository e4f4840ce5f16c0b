"""The hot path builds results through slot descriptors; they must be the ordinary objects."""

from __future__ import annotations

import dataclasses

import pytest

from consumer.transform import Accepted, Fix, Record
from consumer.transform._results import new_accepted, new_record


def test_records_built_fast_equal_records_built_normally() -> None:
    fast = new_record("event", {"evtName": "E"})
    assert fast == Record("event", {"evtName": "E"})
    assert repr(fast) == repr(Record("event", {"evtName": "E"}))
    assert type(fast) is Record
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.kind = "profile"  # type: ignore[misc]


def test_accepted_built_fast_equals_accepted_built_normally() -> None:
    record = Record("profile", {})
    fix = Fix("phone_format", "Phone", "fixed")
    assert new_accepted((record,), [fix]) == Accepted((record,), (fix,))
    assert new_accepted((record,)) == Accepted((record,))
    assert new_accepted((record,), []).fixes == ()
    assert hash(new_accepted((record,), [fix]).fixes) == hash((fix,))

"""The default profile's fixes for profile values CleverTap refuses or misreads; the rudderstack
profile sends every one of them unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from consumer.fake_clevertap._validate import check_record
from consumer.transform import FIX_KINDS, Accepted, Fix, Profile, TransformConfig, transform

DEFAULT = TransformConfig(account_id="ACC", profile=Profile.DEFAULT)
RUDDERSTACK = TransformConfig(account_id="ACC", profile=Profile.RUDDERSTACK)


def _has(fixes: set[Fix], kind: str, field: str, action: str | None) -> bool:
    return any((f.kind, f.field, f.action) == (kind, field, action) for f in fixes)


def _identify(traits: dict[str, Any], config: TransformConfig = DEFAULT) -> tuple[dict[str, Any], set[Fix]]:
    result = transform({"type": "identify", "userId": "u1", "traits": traits}, config)
    assert isinstance(result, Accepted), result
    assert {f.kind for f in result.fixes} <= FIX_KINDS
    (record,) = result.records
    if config is DEFAULT:
        assert check_record(record.data) is None, "the fake CleverTap accepts what the default profile sends"
    return record.data["profileData"], set(result.fixes)


@pytest.mark.parametrize(
    ("given", "sent", "action"),
    [
        (True, "Y", "fixed"),
        (False, "N", "fixed"),
        ("yes", "Y", "fixed"),
        ("No", "N", "fixed"),
        ("Y", "Y", None),
        ("N", "N", None),
        ("sometimes", None, "dropped"),
        (3, None, "dropped"),
    ],
)
def test_employed_and_married_become_y_or_n(given: Any, sent: Any, action: str | None) -> None:
    profile, fixes = _identify({"employed": given, "married": given})
    for key in ("Employed", "Married"):
        assert profile.get(key) == sent
        assert _has(fixes, "yes_no", key, action) is (action is not None)
    assert _identify({"employed": given}, RUDDERSTACK)[0]["Employed"] == given


@pytest.mark.parametrize(
    ("given", "sent", "action"),
    [
        ("false", False, "fixed"),
        ("TRUE", True, "fixed"),
        (0, False, "fixed"),
        (False, False, None),
        ("maybe", None, "dropped"),
    ],
)
def test_msg_flags_given_as_strings_become_booleans(given: Any, sent: Any, action: str | None) -> None:
    profile, fixes = _identify({"MSG-push": given, "MSG-email": True})
    assert profile.get("MSG-push") == sent
    assert profile["MSG-email"] is True
    assert _has(fixes, "msg_flag", "MSG-push", action) is (action is not None)
    assert _identify({"MSG-push": given}, RUDDERSTACK)[0]["MSG-push"] == given


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two@@x.com", "sp ace@x.com", 42])
def test_an_invalid_email_is_dropped_and_reported(email: Any) -> None:
    profile, fixes = _identify({"email": email, "plan": "pro"})
    assert "Email" not in profile
    assert profile["plan"] == "pro", "the rest of the profile still goes"
    assert Fix("invalid_email", "Email", "dropped") in fixes
    assert _identify({"email": email}, RUDDERSTACK)[0]["Email"] == email


def test_a_valid_email_passes_and_padding_is_trimmed() -> None:
    assert _identify({"email": "ann@example.co.uk"}) == ({"Email": "ann@example.co.uk"}, set())
    profile, fixes = _identify({"email": " ann@example.com "})
    assert profile["Email"] == "ann@example.com"
    assert Fix("invalid_email", "Email", "fixed") in fixes


@pytest.mark.parametrize(("traits", "name"), [({"firstName": "Ann"}, "Ann"), ({"last_name": "Lee"}, "Lee")])
def test_a_lone_first_or_last_name_sets_name(traits: dict[str, Any], name: str) -> None:
    profile, fixes = _identify(traits)
    assert profile["Name"] == name
    assert Fix("name_from_part", "Name", "fixed") in fixes
    assert "Name" not in _identify(traits, RUDDERSTACK)[0]


def test_both_name_parts_and_an_explicit_name_are_unchanged() -> None:
    assert _identify({"firstName": "Ann", "lastName": "Lee"}) == ({"Name": "Ann Lee"}, set())
    assert _identify({"name": "A. Lee", "firstName": "Ann"}) == ({"Name": "A. Lee"}, set())


@pytest.mark.parametrize(
    ("gender", "sent", "action"),
    [
        ("F", "F", None),
        ("female", "F", None),
        ("Male", "M", None),
        ("fEmale", "F", "fixed"),
        (" m ", "M", "fixed"),
        ("other", None, "dropped"),
        ("Man", None, "dropped"),
    ],
)
def test_an_unmapped_gender_is_reported(gender: str, sent: str | None, action: str | None) -> None:
    profile, fixes = _identify({"gender": gender})
    assert profile.get("Gender") == sent
    assert _has(fixes, "gender", "Gender", action) is (action is not None)


@pytest.mark.parametrize(
    "command",
    [{"$add": ["sports", "news"]}, {"$remove": ["news"]}, {"$incr": 2}, {"$decr": 1.5}, {"$delete": 1}],
)
def test_profile_commands_are_sent_as_commands(command: dict[str, Any]) -> None:
    profile, fixes = _identify({"Interests": command})
    assert profile["Interests"] == command
    assert fixes == set()
    assert isinstance(_identify({"Interests": command}, RUDDERSTACK)[0]["Interests"], str)  # stringified


def test_a_single_string_add_is_a_list_and_malformed_commands_are_dropped() -> None:
    profile, _ = _identify({"Interests": {"$add": "sports"}})
    assert profile["Interests"] == {"$add": ["sports"]}
    bad: dict[str, Any]
    for bad in ({"$add": [1, 2]}, {"$incr": "2"}, {"$add": []}, {"$delete": 0}):
        profile, fixes = _identify({"Interests": bad, "plan": "pro"})
        assert "Interests" not in profile
        assert profile["plan"] == "pro"
        assert Fix("profile_command", "Interests", "dropped") in fixes
    profile, fixes = _identify({"Address": {"city": "Pune", "$add": ["x"]}})
    assert profile["Address"] == '{"city":"Pune","$add":["x"]}'  # not a command: JSON text as before


def _charged(
    properties: dict[str, Any], config: TransformConfig = DEFAULT
) -> tuple[dict[str, Any], set[Fix]]:
    message = {"type": "track", "event": "Order Completed", "userId": "u1", "properties": properties}
    result = transform(message, config)
    assert isinstance(result, Accepted), result
    (record,) = result.records
    if config is DEFAULT:
        assert check_record(record.data) is None
    return record.data["evtData"], set(result.fixes)


@pytest.mark.parametrize(
    ("revenue", "amount"), [("15", 15), (" 15.50 ", 15.5), ("1e2", 100.0), (12, 12), (9.99, 9.99)]
)
def test_a_numeric_string_amount_is_sent_as_a_number(revenue: Any, amount: float) -> None:
    data, fixes = _charged({"revenue": revenue})
    assert data["Amount"] == amount
    assert (Fix("amount", "Amount", "fixed") in fixes) is isinstance(revenue, str)
    assert _charged({"revenue": revenue}, RUDDERSTACK)[0]["Amount"] == revenue


def test_a_non_numeric_amount_is_dropped_and_reported() -> None:
    data, fixes = _charged({"revenue": "lots", "order_id": "o1"})
    assert "Amount" not in data
    assert data["order_id"] == "o1"
    assert Fix("amount", "Amount", "dropped") in fixes


def test_nested_objects_in_charged_items_are_flattened_and_arrays_dropped() -> None:
    items = [
        {"sku": "A", "dims": {"w": 2, "h": {"cm": 3}}, "tags": ["x"]},
        {"sku": "B", "price": 3},
    ]
    data, fixes = _charged({"products": items})
    assert data["Items"] == [{"sku": "A", "dims_w": 2, "dims_h_cm": 3}, {"sku": "B", "price": 3}]
    assert Fix("charged_item_nested", "Items[0].dims", "fixed") in fixes
    assert Fix("charged_item_nested", "Items[0].dims_h", "fixed") in fixes
    assert Fix("charged_item_nested", "Items[0].tags", "dropped") in fixes
    assert _charged({"products": items}, RUDDERSTACK)[0]["Items"] == items

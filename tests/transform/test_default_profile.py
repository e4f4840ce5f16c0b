"""The default profile: RudderStack's mapping with the data-losing quirks fixed (README,
"Differences from RudderStack"), and pre-flight checks against CleverTap's limits."""

from __future__ import annotations

from typing import Any

import pytest

from consumer.clevertap_api import RESTRICTED_EVENT_NAMES
from consumer.transform import (
    FIX_KINDS,
    REJECT_REASONS,
    Accepted,
    Fix,
    Profile,
    Rejected,
    TransformConfig,
    transform,
)


def default(**options: Any) -> TransformConfig:
    return TransformConfig(account_id="ACC", profile=Profile.DEFAULT, **options)


ANON = default(track_anonymous=True)
KNOWN_ONLY = default()
OBJECT_IDS = default(track_anonymous=True, enable_object_id_mapping=True)
RS = TransformConfig(account_id="ACC", profile=Profile.RUDDERSTACK, track_anonymous=True)


def accepted(result: object) -> Accepted:
    assert isinstance(result, Accepted), result
    assert {f.kind for f in result.fixes} <= FIX_KINDS
    return result


def only(result: object) -> dict[str, Any]:
    (record,) = accepted(result).records
    return record.data


def fixes(result: object) -> set[tuple[str, str, str]]:
    return {(f.kind, f.field, f.action) for f in accepted(result).fixes}


def rejection(result: object) -> Rejected:
    assert isinstance(result, Rejected), result
    assert result.status == 400
    assert result.reason in REJECT_REASONS
    return result


def track(properties: Any = None, **fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "track", "event": "Played", "userId": "u", **fields}
    if properties is not None:
        message["properties"] = properties
    return message


def evt_data(properties: dict[str, Any], **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = only(transform(track(properties, **fields), ANON))["evtData"]
    return data


def profile_data(traits: dict[str, Any], **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = only(
        transform({"type": "identify", "userId": "u", "traits": traits, **fields}, ANON)
    )["profileData"]
    return data


# --- 1. ts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "seconds"),
    [
        ("2021-03-10T11:59:22.080Z", 1615377562),
        ("2021-03-10T11:59:22", 1615377562),  # no offset: UTC
        ("2021-03-10T17:29:22+05:30", 1615377562),
        ("2021-03-10", 1615334400),
        ("1615377562", 1615377562),
        (" 1615377562.9 ", 1615377562),
        (1615377562000, 1615377562),  # milliseconds
        (1615377562000000, 1615377562),  # microseconds
        (1615377562.5, 1615377562),
    ],
)
def test_ts_is_always_integer_epoch_seconds(ts: Any, seconds: int) -> None:
    record = only(transform(track({"ts": ts}), ANON))
    assert record["ts"] == seconds
    assert type(record["ts"]) is int


def test_ts_falls_back_to_timestamp_then_original_timestamp() -> None:
    assert only(transform(track(timestamp="2021-03-10T11:59:22Z"), ANON))["ts"] == 1615377562
    assert only(transform(track(originalTimestamp="2021-03-10T11:59:23Z"), ANON))["ts"] == 1615377563
    message = {"type": "identify", "userId": "u", "timestamp": "2021-03-10T11:59:22Z"}
    assert only(transform(message, ANON))["ts"] == 1615377562


def test_identify_prefers_trait_ts_then_context_trait_ts() -> None:
    message = {
        "type": "identify",
        "userId": "u",
        "traits": {"ts": "garbage"},
        "context": {"traits": {"ts": 1615377562}},
        "timestamp": "2030-01-01T00:00:00Z",
    }
    result = transform(message, ANON)
    assert only(result)["ts"] == 1615377562
    assert fixes(result) == {("invalid_timestamp", "traits.ts", "dropped")}


@pytest.mark.parametrize("bad", ["soon", True, {"t": 1}, -5, 0, "NaN"])
def test_an_unparsable_ts_is_never_sent_as_null(bad: Any) -> None:
    result = transform(track({"ts": bad}, timestamp="2021-03-10T11:59:22Z"), ANON)
    assert only(result)["ts"] == 1615377562
    assert ("invalid_timestamp", "properties.ts", "dropped") in fixes(result)
    result = transform(track({"ts": bad}), ANON)
    assert "ts" not in only(result)


def test_charged_uses_properties_ts_and_drops_it_from_evt_data() -> None:
    message = track({"ts": "2021-03-10T11:59:22Z", "revenue": 5}, event="Order Completed")
    record = only(transform(message, ANON))
    assert record["ts"] == 1615377562
    assert record["evtData"] == {"Amount": 5}


# --- 2. identifiers -----------------------------------------------------------------------------


def test_identify_without_any_identifier_is_rejected() -> None:
    result = rejection(transform({"type": "identify", "traits": {"email": "a@b.c"}}, ANON))
    assert result.reason == "missing_identity"
    assert "identity" in result.message
    assert rejection(transform({"type": "identify", "traits": {"email": "a@b.c"}}, OBJECT_IDS)).reason == (
        "missing_identity"
    )


def test_anonymous_event_without_any_identifier_is_rejected_even_with_track_anonymous() -> None:
    assert rejection(transform(track(userId=None), ANON)).reason == "missing_identity"


def test_unusable_ids_are_skipped_for_the_next_usable_one() -> None:
    message = track(userId=False, traits={"userId": "  "}, context={"traits": {"id": 7}})
    assert only(transform(message, ANON))["identity"] == 7


def test_numeric_ids_stay_numbers() -> None:
    assert only(transform(track(userId=42), ANON))["identity"] == 42


def test_alias_needs_both_ids() -> None:
    assert only(transform({"type": "alias", "userId": "new", "previousId": "old"}, ANON)) == {
        "type": "profile",
        "profileData": {"identity": "new"},
        "identity": "old",
    }
    assert rejection(transform({"type": "alias", "userId": "new"}, ANON)).reason == "missing_identity"
    assert rejection(transform({"type": "alias", "previousId": "old"}, ANON)).reason == "missing_identity"


def test_object_id_mapping_rules_are_kept() -> None:
    message = track(anonymousId="anon")
    assert only(transform(message, OBJECT_IDS)).get("objectId") == "anon"
    rejected = rejection(transform(track(userId=None), OBJECT_IDS))
    assert rejected.message == "Unable to process without anonymousId or userId"


def test_known_user_requirement_without_track_anonymous() -> None:
    result = rejection(transform(track(userId=None, anonymousId="a"), KNOWN_ONLY))
    assert (result.reason, result.message) == (
        "anonymous_not_allowed",
        "userId, not present cannot track anonymous user",
    )


# --- 3. page and screen names -------------------------------------------------------------------


def test_page_name_is_not_html_escaped_in_default_profile() -> None:
    assert only(transform({"type": "page", "userId": "u", "name": "Tom & Jerry"}, ANON))["evtName"] == (
        "Web Page Viewed: Tom & Jerry"
    )
    assert only(transform({"type": "screen", "userId": "u", "name": "<Cart>"}, ANON))["evtName"] == (
        "Screen Viewed: <Cart>"
    )


def test_order_completed_on_a_page_is_not_a_purchase() -> None:
    record = only(transform({"type": "page", "userId": "u", "event": "Order Completed"}, ANON))
    assert record["evtName"] == "Web Page Viewed: Order Completed"
    rs_record = only(transform({"type": "page", "userId": "u", "event": "Order Completed"}, RS))
    assert rs_record["evtName"] == "Charged"  # RudderStack's check is shared by track, page and screen


# --- 4. dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birthday", "dob"),
    [
        ("1990-04-12", "$D_639878400"),
        ("1990-04-12T10:00:00Z", "$D_639914400"),
        (639878400, "$D_639878400"),
        ("639878400", "$D_639878400"),
        (639878400000, "$D_639878400"),  # milliseconds
        (-86400, "$D_-86400"),  # born before 1970
        ("$D_639878400", "$D_639878400"),
    ],
)
def test_birthday_becomes_a_clevertap_date(birthday: Any, dob: str) -> None:
    assert profile_data({"birthday": birthday})["DOB"] == dob


@pytest.mark.parametrize("birthday", ["12/04/1990", "next week", True, {"y": 1990}])
def test_a_birthday_that_is_no_date_is_dropped_and_reported(birthday: Any) -> None:
    result = transform({"type": "identify", "userId": "u", "traits": {"birthday": birthday}}, ANON)
    assert "DOB" not in only(result)["profileData"]
    assert fixes(result) == {("invalid_date", "DOB", "dropped")}


def test_strict_iso_strings_in_traits_and_properties_become_dates() -> None:
    assert profile_data({"signup": "2024-01-15", "seen": "2024-01-15T10:30:00Z"}) == {
        "signup": "$D_1705276800",
        "seen": "$D_1705314600",
    }
    assert evt_data({"delivery": "2024-01-15T10:30", "plain": "2024-01-15 10:30", "week": "2024-W03-1"}) == {
        "delivery": "$D_1705314600",
        "plain": "2024-01-15 10:30",
        "week": "2024-W03-1",
    }


def test_standard_text_fields_and_numbers_are_never_read_as_dates() -> None:
    assert profile_data({"name": "2024-01-15", "plan_id": 1705276800}) == {
        "Name": "2024-01-15",
        "plan_id": 1705276800,
    }
    assert evt_data({"invalid": "2024-02-30"}) == {"invalid": "2024-02-30"}


# --- 5. pre-flight checks -----------------------------------------------------------------------


def test_keys_over_120_bytes_are_dropped() -> None:
    long_key = "k" * 121
    fits = "é" * 60  # 120 bytes
    result = transform(track({long_key: 1, fits: 2, "ok": 3}), ANON)
    assert only(result)["evtData"] == {fits: 2, "ok": 3}
    assert fixes(result) == {("key_too_long", "k" * 64 + "…", "dropped")}


def test_long_text_is_cut_at_a_character_boundary() -> None:
    text = "a" + "é" * 300  # 601 bytes
    result = transform(track({"bio": text}), ANON)
    cut = only(result)["evtData"]["bio"]
    assert cut == "a" + "é" * 255
    assert len(cut.encode()) == 511
    assert fixes(result) == {("value_too_long", "bio", "fixed")}


def test_nested_values_whose_json_text_is_too_long_are_dropped_not_cut() -> None:
    result = transform(track({"blob": {"x": "y" * 600}, "small": {"x": 1}}), ANON)
    assert only(result)["evtData"] == {"small": '{"x":1}'}
    assert fixes(result) == {("value_too_long", "blob", "dropped")}


def test_long_profile_values_are_cut_too() -> None:
    result = transform({"type": "identify", "userId": "u", "traits": {"name": "n" * 600}}, ANON)
    assert only(result)["profileData"]["Name"] == "n" * 512
    assert fixes(result) == {("value_too_long", "Name", "fixed")}


def test_only_the_first_100_event_properties_are_kept() -> None:
    properties = {f"p{i:03}": i for i in range(105)}
    result = transform(track(properties), ANON)
    assert list(only(result)["evtData"]) == [f"p{i:03}" for i in range(100)]
    assert fixes(result) == {("too_many_properties", f"p{i:03}", "dropped") for i in range(100, 105)}


@pytest.mark.parametrize(
    "name", [*RESTRICTED_EVENT_NAMES, "app launched", "AppLaunched", " UTM Visited", "UTM\tVisited", "ſtayed"]
)
def test_restricted_event_names_are_rejected(name: str) -> None:
    result = rejection(transform(track(event=name), ANON))
    assert result.reason == "restricted_event"
    assert "reserved by CleverTap" in result.message


def test_restricted_names_are_fine_in_the_rudderstack_profile() -> None:
    assert only(transform(track(event="App Launched"), RS))["evtName"] == "App Launched"


@pytest.mark.parametrize(
    ("phone", "sent", "action"),
    [
        ("+14155550100", "+14155550100", None),
        ("+1 (415) 555-0100", "+14155550100", "fixed"),
        ("0044 20 7946 0958", "+442079460958", "fixed"),
        ("4155550100", None, "dropped"),
        (14155550100, None, "dropped"),
        ("+0123", None, "dropped"),
    ],
)
def test_phone_is_sent_in_e164_or_not_at_all(phone: Any, sent: str | None, action: str | None) -> None:
    result = transform({"type": "identify", "userId": "u", "traits": {"phone": phone}}, ANON)
    assert only(result)["profileData"].get("Phone") == sent
    assert fixes(result) == ({("phone_format", "Phone", action)} if action else set())


def test_charged_items_that_are_not_objects_are_dropped() -> None:
    message = track({"products": ["s", {"sku": "a"}, 3, {"sku": "b"}]}, event="Order Completed")
    result = transform(message, ANON)
    assert only(result)["evtData"]["Items"] == [{"sku": "a"}, {"sku": "b"}]
    assert fixes(result) == {
        ("charged_items", "Items[0]", "dropped"),
        ("charged_items", "Items[2]", "dropped"),
    }


@pytest.mark.parametrize("products", [[], ["a", 1], {"sku": "a"}, "not json", 0])
def test_charged_without_any_object_item_is_rejected(products: Any) -> None:
    result = rejection(transform(track({"products": products}, event="Order Completed"), ANON))
    assert (result.reason, result.message) == (
        "bad_products",
        "Products property value must be an array of objects",
    )


def test_charged_products_given_as_json_text_are_read() -> None:
    message = track({"products": '[{"sku": "a"}]'}, event="order completed")
    assert only(transform(message, ANON))["evtData"]["Items"] == [{"sku": "a"}]


# --- shapes -------------------------------------------------------------------------------------


def test_non_object_properties_are_ignored_and_reported() -> None:
    result = transform(track("text"), ANON)
    assert only(result)["evtData"] == {}
    assert fixes(result) == {("not_an_object", "properties", "dropped")}


def test_non_object_traits_are_ignored_and_reported() -> None:
    result = transform({"type": "identify", "userId": "u", "traits": ["x"]}, ANON)
    assert only(result)["profileData"] == {}
    assert fixes(result) == {("not_an_object", "traits", "dropped")}


@pytest.mark.parametrize(
    ("event", "reason"), [("  ", "missing_event"), (None, "missing_event"), ({"a": 1}, "missing_event")]
)
def test_track_needs_a_text_event_name(event: Any, reason: str) -> None:
    assert rejection(transform(track(event=event), ANON)).reason == reason


def test_a_numeric_event_name_is_sent_as_text() -> None:
    assert only(transform(track(event=123), ANON))["evtName"] == "123"


def test_mapping_is_otherwise_the_same_as_rudderstacks() -> None:
    traits = {
        "email": "a@b.c",
        "firstName": "Jane",
        "lastName": "Doe",
        "gender": "female",
        "plan": {"tier": 1.0},
    }
    message = {"type": "identify", "userId": "u", "traits": traits, "context": {"traits": {"plan2": "x"}}}
    assert only(transform(message, ANON))["profileData"] == {
        "Email": "a@b.c",
        "Gender": "F",
        "Name": "Jane Doe",
        "plan": '{"tier":1}',
        "plan2": "x",
    }


def test_results_carry_fixes_as_values() -> None:
    result = accepted(transform(track({"k" * 200: 1}), ANON))
    assert result.fixes == (Fix("key_too_long", "k" * 64 + "…", "dropped"),)


def test_override_fields_are_sent_as_given_but_phone_and_dob_still_have_to_be_valid() -> None:
    overrides = {
        "score": {"$incr": 1},
        "Phone": "0044 20 7946 0958",
        "DOB": "1990-04-12",
        "note": "2024-01-15",
    }
    result = transform({"type": "identify", "userId": "u", "traits": {"overrideFields": overrides}}, ANON)
    assert only(result)["profileData"] == {
        "score": {"$incr": 1},
        "Phone": "+442079460958",
        "DOB": "$D_639878400",
        "note": "2024-01-15",
    }


@pytest.mark.parametrize("profile", list(Profile))
def test_values_nested_deeper_than_the_stack_are_refused_not_raised(profile: Profile) -> None:
    deep: Any = 1
    for _ in range(2000):
        deep = {"a": deep}
    message = track({"deep": deep})
    result = transform(message, TransformConfig(account_id="ACC", track_anonymous=True, profile=profile))
    assert isinstance(result, Rejected)
    assert (result.reason, result.status) == ("too_deep", 400)

"""The rudderstack profile reproduces RudderStack's CleverTap destination, quirks included.

Each test is one rule of the behaviour reference (rudderstack-clevertap-behaviour.md §3), on
inputs written for the rule.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from consumer.transform import Accepted, Profile, Rejected, TransformConfig, transform


def rs(**options: Any) -> TransformConfig:
    return TransformConfig(account_id="ACC", profile=Profile.RUDDERSTACK, **options)


ANON = rs(track_anonymous=True)
KNOWN_ONLY = rs(track_anonymous=False)
OBJECT_IDS = rs(track_anonymous=True, enable_object_id_mapping=True)


def records(result: object) -> list[dict[str, Any]]:
    assert isinstance(result, Accepted), result
    assert result.fixes == ()
    return [r.data for r in result.records]


def only(result: object) -> dict[str, Any]:
    (record,) = records(result)
    return record


def rejected(result: object) -> tuple[int, str]:
    assert isinstance(result, Rejected), result
    return result.status, result.message


def identify(traits: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "identify", "userId": "u1", **fields}
    if traits is not None:
        message["traits"] = traits
    return message


def profile_data(traits: dict[str, Any], **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = only(transform(identify(traits, **fields), ANON))["profileData"]
    return data


# --- dispatch ---------------------------------------------------------------------------------


def test_missing_type_is_rejected_with_rudderstacks_message() -> None:
    assert rejected(transform({"event": "x", "userId": "u"}, ANON)) == (
        400,
        "Message Type is not present. Aborting message.",
    )


@pytest.mark.parametrize("message_type", ["group", "Rndm", 5, ["track"]])
def test_unsupported_types_are_rejected(message_type: Any) -> None:
    assert rejected(transform({"type": message_type, "userId": "u"}, ANON)) == (
        400,
        "Message type not supported",
    )


def test_type_is_case_insensitive() -> None:
    assert only(transform({"type": "TRACK", "event": "E", "userId": "u"}, ANON))["evtName"] == "E"


# --- identify: mapping -------------------------------------------------------------------------


def test_identify_maps_standard_traits_to_clevertap_keys() -> None:
    data = profile_data(
        {
            "email": "a@b.c",
            "name": "Jane",
            "phone": 123456,
            "gender": "female",
            "employed": False,
            "birthday": "1614775793",
            "education": "Grad",
            "married": "Y",
            "customerType": "Prime",
            "avatar": "https://x/y.png",
        }
    )
    assert data == {
        "Email": "a@b.c",
        "Name": "Jane",
        "Phone": 123456,
        "Gender": "F",
        "Employed": False,
        "DOB": "1614775793",
        "Education": "Grad",
        "Married": "Y",
        "Customer Type": "Prime",
        "Photo": "https://x/y.png",
    }


@pytest.mark.parametrize(
    ("given", "mapped"),
    [("f", "F"), ("FEMALE", "F"), ("Male", "M"), ("m", "M"), ("other", None), ("Man", None)],
)
def test_gender_uses_an_exact_match_table_and_drops_the_rest(given: str, mapped: str | None) -> None:
    assert profile_data({"gender": given}).get("Gender") == mapped


def test_name_is_built_from_first_and_last_name_when_missing() -> None:
    assert profile_data({"first_name": "Tony", "lastname": "Stark"})["Name"] == "Tony Stark"
    assert profile_data({"name": "Iron Man", "firstName": "Tony", "lastName": "Stark"})["Name"] == "Iron Man"


def test_a_first_name_without_a_last_name_is_lost() -> None:
    assert profile_data({"firstName": "Tony"}) == {}


def test_standard_keys_prefer_traits_and_custom_keys_prefer_context_traits() -> None:
    message = identify(
        {"email": "t@x", "plan": "free"}, context={"traits": {"email": "c@x", "plan": "pro", "extra": 1}}
    )
    data = only(transform(message, ANON))["profileData"]
    assert data == {"Email": "t@x", "plan": "pro", "extra": 1}


def test_email_falls_back_to_properties_but_never_to_external_ids() -> None:
    assert profile_data({}, properties={"email": "p@x"}) == {"Email": "p@x"}
    assert profile_data({}, context={"externalId": [{"type": "email", "id": "e@x"}]}) == {}


def test_capital_email_trait_is_a_custom_key_that_overwrites_the_mapped_one() -> None:
    assert profile_data({"email": "a@x", "Email": "B@x"}) == {"Email": "B@x"}


def test_custom_traits_are_copied_under_their_own_names_including_subscription_flags() -> None:
    data = profile_data({"MSG-email": False, "MSG-push": True, "msgSms": True, "$custom": 1, "plan": "pro"})
    assert data == {"MSG-email": False, "MSG-push": True, "msgSms": True, "$custom": 1, "plan": "pro"}


def test_nested_traits_become_javascript_json_text_except_category_keys() -> None:
    data = profile_data(
        {
            "address": {"city": "Kraków", "zip": 31.0},
            "tags": ["a", "b"],
            "empty": {},
            "category-unsubscribe": {"email": ["Marketing"]},
        }
    )
    assert data == {
        "address": '{"city":"Kraków","zip":31}',
        "tags": '["a","b"]',
        "empty": "{}",
        "category-unsubscribe": {"email": ["Marketing"]},
    }


def test_a_dotted_trait_key_becomes_a_nested_path_then_text() -> None:
    assert profile_data({"a.b": 1}) == {"a": '{"b":1}'}


def test_override_fields_merge_after_stringification_and_may_overwrite_mapped_keys() -> None:
    data = profile_data({"name": "Jane", "overrideFields": {"Name": "J.", "score": {"$incr": 1}}})
    assert data == {"Name": "J.", "score": {"$incr": 1}}


def test_context_override_fields_apply_only_without_trait_override_fields() -> None:
    message = identify({"overrideFields": {"a": 1}}, context={"traits": {"overrideFields": {"b": 2}}})
    assert only(transform(message, ANON))["profileData"] == {"a": 1}
    message = identify({}, context={"traits": {"overrideFields": {"b": 2}}})
    assert only(transform(message, ANON))["profileData"] == {"b": 2}


def test_null_traits_are_pruned_from_profile_data() -> None:
    assert profile_data({"plan": None, "x": 0}) == {"x": 0}


# --- identify: identity ------------------------------------------------------------------------


def test_identify_without_any_id_sends_identity_null() -> None:
    record = only(transform({"type": "identify", "traits": {"plan": "x"}}, ANON))
    assert "identity" in record
    assert record["identity"] is None


def test_user_id_is_looked_up_in_rudderstacks_order_and_keeps_its_type() -> None:
    assert only(transform({"type": "identify", "userId": 42}, ANON))["identity"] == 42
    message = {
        "type": "identify",
        "traits": {"id": "t-id"},
        "context": {"traits": {"userId": "c"}},
        "anonymousId": "a",
    }
    assert only(transform(message, ANON))["identity"] == "t-id"
    assert only(transform({"type": "identify", "anonymousId": "a"}, ANON))["identity"] == "a"
    assert only(transform({"type": "identify", "userId": 0, "anonymousId": "a"}, ANON))["identity"] == 0


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"anonymousId": "a", "userId": "u"}, {"objectId": "a", "inner": "u"}),
        ({"anonymousId": "a"}, {"objectId": "a"}),
        ({"userId": "u"}, {"identity": "u"}),
        ({}, {}),
    ],
)
def test_identify_with_object_id_mapping(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    record = only(transform({"type": "identify", **fields}, OBJECT_IDS))
    assert {k: record[k] for k in ("objectId", "identity") if k in record} == {
        k: v for k, v in expected.items() if k != "inner"
    }
    assert record["profileData"].get("identity") == expected.get("inner")


# --- device tokens -----------------------------------------------------------------------------


def mobile_identify(os_name: str = "Android", **fields: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": "u",
        "anonymousId": "anon",
        "context": {"os": {"name": os_name}, "device": {"token": "tok"}},
        **fields,
    }


@pytest.mark.parametrize(
    ("os_name", "token_type"), [("Android", "fcm"), ("iOS", "apns"), ("watchOS", "apns")]
)
def test_identify_from_a_mobile_os_also_uploads_the_device_token(os_name: str, token_type: str) -> None:
    result = transform(mobile_identify(os_name), OBJECT_IDS)
    assert isinstance(result, Accepted)
    assert [r.kind for r in result.records] == ["profile", "token"]
    assert result.records[1].data == {
        "type": "token",
        "tokenData": {"id": "tok", "type": token_type},
        "objectId": "anon",
    }


def test_token_type_and_chrome_keys_come_from_the_integrations_object() -> None:
    options = {"deviceTokenType": "chrome", "chromeKeys": {"auth": "k"}}
    message = mobile_identify(integrations={"All": True, "CleverTap": options})
    token = records(transform(message, OBJECT_IDS))[1]
    assert token["tokenData"] == {"id": "tok", "type": "chrome", "keys": {"auth": "k"}}


def test_unknown_token_types_and_empty_chrome_keys_are_ignored() -> None:
    message = mobile_identify(integrations={"clevertap": {"deviceTokenType": "random", "chromeKeys": {}}})
    assert records(transform(message, OBJECT_IDS))[1]["tokenData"] == {"id": "tok", "type": "fcm"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (OBJECT_IDS, mobile_identify("Mac OS", integrations={"clevertap": {"deviceTokenType": "chrome"}})),
        (OBJECT_IDS, {**mobile_identify(), "anonymousId": None}),
        (ANON, mobile_identify()),
    ],
)
def test_no_token_upload_for_browsers_without_anonymous_id_or_without_object_id_mapping(
    config: TransformConfig, message: dict[str, Any]
) -> None:
    assert [r["type"] for r in records(transform(message, config))] == ["profile"]


# --- ts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2021-03-10T11:59:22.080Z", 1615377562),
        ("1615377562", "1615377562"),  # numeric strings are kept as given
        (1615377562000, 1615377562000),  # milliseconds are not divided
        (True, True),
        ("not a date", None),  # NaN, which JSON writes as null
        ("0", 946684800),  # Number("0") is 0, and new Date("0") is 1 January 2000
    ],
)
def test_ts_conversion_keeps_javascripts_quirks(ts: Any, expected: Any) -> None:
    record = only(transform(identify({"ts": ts}), ANON))
    assert record["ts"] == expected


def test_ts_falls_through_falsy_trait_values_to_context_traits() -> None:
    message = identify({"ts": 0}, context={"traits": {"ts": "2021-03-10T11:59:22Z"}})
    assert only(transform(message, ANON))["ts"] == 1615377562


def test_identify_ignores_the_event_timestamp() -> None:
    assert "ts" not in only(transform(identify({}, timestamp="2021-03-10T11:59:22Z"), ANON))


def test_event_ts_comes_from_properties_and_also_stays_in_evt_data() -> None:
    message = {"type": "track", "event": "E", "userId": "u", "properties": {"ts": "2021-03-10T11:59:22Z"}}
    record = only(transform(message, ANON))
    assert record["ts"] == 1615377562
    assert record["evtData"] == {"ts": "2021-03-10T11:59:22Z"}


def test_an_unparsable_event_ts_is_sent_as_null() -> None:
    message = {"type": "track", "event": "E", "userId": "u", "properties": {"ts": "soon"}}
    record = only(transform(message, ANON))
    assert "ts" in record
    assert record["ts"] is None


# --- track / page / screen ---------------------------------------------------------------------


def test_track_sends_properties_as_evt_data_with_nested_values_as_text_and_nulls_kept() -> None:
    message = {
        "type": "track",
        "event": "Played",
        "userId": "u",
        "properties": {"n": 1, "d": {"a": [1]}, "x": None},
    }
    assert only(transform(message, ANON)) == {
        "evtName": "Played",
        "evtData": {"n": 1, "d": '{"a":[1]}', "x": None},
        "type": "event",
        "identity": "u",
    }


def test_a_numeric_event_name_stays_a_number() -> None:
    assert only(transform({"type": "track", "event": 123, "userId": "u"}, ANON))["evtName"] == 123


@pytest.mark.parametrize("fields", [{}, {"event": ""}, {"event": None}])
def test_track_without_event_name_is_rejected(fields: dict[str, Any]) -> None:
    assert rejected(transform({"type": "track", "userId": "u", **fields}, ANON)) == (
        400,
        'Missing required value from "event"',
    )


def test_empty_string_properties_are_a_missing_required_value() -> None:
    message = {"type": "track", "event": "E", "userId": "u", "properties": ""}
    assert rejected(transform(message, ANON)) == (400, 'Missing required value from "properties"')


def test_anonymous_events_are_rejected_without_track_anonymous_before_the_name_is_checked() -> None:
    assert rejected(transform({"type": "track", "anonymousId": "a"}, KNOWN_ONLY)) == (
        400,
        "userId, not present cannot track anonymous user",
    )


def test_anonymous_events_use_the_anonymous_id_as_identity_when_allowed() -> None:
    assert only(transform({"type": "track", "event": "E", "anonymousId": "a"}, ANON))["identity"] == "a"


def test_an_event_without_any_id_is_sent_without_identity() -> None:
    assert "identity" not in only(transform({"type": "track", "event": "E"}, ANON))


def test_page_name_is_html_escaped_in_rudderstack_profile() -> None:
    message = {"type": "page", "name": "Tom & Jerry <3", "userId": "u"}
    assert only(transform(message, ANON))["evtName"] == "Web Page Viewed: Tom &amp; Jerry &lt;3"


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"name": "Home"}, "Web Page Viewed: Home"),
        ({"event": "E", "name": "Home"}, "Web Page Viewed: E"),
        ({"properties": {"name": "P"}}, "Web Page Viewed: P"),
        ({"name": " Home "}, "Web Page Viewed:  Home"),
        ({"name": 0}, "Web Page Viewed: 0"),
        ({"name": {"a": 1}}, "Web Page Viewed: [object Object]"),
        ({}, "Web Page Viewed"),
    ],
)
def test_page_names(fields: dict[str, Any], name: str) -> None:
    assert only(transform({"type": "page", "userId": "u", **fields}, ANON))["evtName"] == name


def test_screen_names() -> None:
    assert (
        only(transform({"type": "screen", "userId": "u", "name": "Cart"}, ANON))["evtName"]
        == "Screen Viewed: Cart"
    )
    assert only(transform({"type": "screen", "userId": "u"}, ANON))["evtName"] == "Screen Viewed"


def test_events_with_object_id_mapping_send_only_the_anonymous_id() -> None:
    both = only(transform({"type": "track", "event": "E", "userId": "u", "anonymousId": "a"}, OBJECT_IDS))
    assert (both.get("objectId"), both.get("identity")) == ("a", None)
    known = only(transform({"type": "track", "event": "E", "userId": "u"}, OBJECT_IDS))
    assert (known.get("objectId"), known.get("identity")) == (None, "u")
    assert rejected(transform({"type": "track", "event": "E"}, OBJECT_IDS)) == (
        400,
        "Unable to process without anonymousId or userId",
    )


# --- Charged --------------------------------------------------------------------------------------


def order(properties: Any, event: str = "Order Completed") -> dict[str, Any]:
    return {"type": "track", "event": event, "userId": "u", "properties": properties}


def test_order_completed_becomes_charged_in_any_casing() -> None:
    properties = {
        "checkout_id": "c1",
        "revenue": "15",
        "products": [{"sku": "G", "price": 14.0}],
        "order_id": "o1",
        "extra": {"a": 1},
        "ts": "2021-03-10T11:59:22Z",
    }
    record = only(transform(order(properties, "ORDER completed"), ANON))
    assert record == {
        "evtName": "Charged",
        "evtData": {
            "Charged ID": "c1",
            "Amount": "15",
            "Items": [{"sku": "G", "price": 14.0}],
            "order_id": "o1",
            "extra": '{"a":1}',
        },
        "ts": 1615377562,
        "type": "event",
        "identity": "u",
    }


def test_charged_keeps_zero_revenue_and_drops_an_empty_checkout_id() -> None:
    assert only(transform(order({"checkout_id": "", "revenue": 0}), ANON))["evtData"] == {"Amount": 0}


def test_charged_without_properties_has_empty_evt_data() -> None:
    assert only(transform(order(None), ANON))["evtData"] == {}


@pytest.mark.parametrize("products", [[], {"a": 1}, ["s", {"a": 1}], 5, "text"])
def test_charged_products_must_be_an_array_starting_with_an_object(products: Any) -> None:
    assert rejected(transform(order({"products": products}), ANON)) == (
        400,
        "Products property value must be an array of objects",
    )


def test_only_the_first_product_is_checked() -> None:
    assert only(transform(order({"products": [{"a": 1}, "s"]}), ANON))["evtData"]["Items"] == [{"a": 1}, "s"]


def test_other_ecommerce_events_are_ordinary_events() -> None:
    record = only(transform(order({"products": [{"a": 1}]}, "Product Added"), ANON))
    assert record["evtName"] == "Product Added"
    assert record["evtData"] == {"products": '[{"a":1}]'}


# --- alias ----------------------------------------------------------------------------------------


def test_alias_links_previous_id_to_user_id_whatever_the_flags() -> None:
    message = {"type": "alias", "userId": "new", "previousId": "old", "anonymousId": "a"}
    expected = {"type": "profile", "profileData": {"identity": "new"}, "identity": "old"}
    assert only(transform(message, OBJECT_IDS)) == expected
    assert only(transform(message, KNOWN_ONLY)) == expected


def test_alias_without_ids_is_still_sent() -> None:
    assert only(transform({"type": "alias"}, ANON)) == {"type": "profile", "profileData": {}}


# --- purity ---------------------------------------------------------------------------------------


def test_the_input_message_is_never_modified() -> None:
    message = identify(
        {"a.b": 1, "a": {"c": 2}, "overrideFields": {"x": None}},
        context={"traits": {"a.d": 3}, "os": {"name": "android"}, "device": {"token": "t"}},
        anonymousId="anon",
    )
    snapshot = copy.deepcopy(message)
    transform(message, OBJECT_IDS)
    transform(message, ANON)
    assert message == snapshot

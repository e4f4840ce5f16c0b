"""Partner formats (AppsFlyer Push API, Branch webhooks, Adjust callbacks) and Segment's
`Install Attributed` → CleverTap records, per partner and per destination option (README,
"Attribution"). Payloads use the partners' documented field names and value formats."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.destinations import Destination
from consumer.route import FORMATS
from consumer.transform import (
    ATTRIBUTION_FILTER_REASONS,
    Accepted,
    Filtered,
    InAppEvent,
    Profile,
    Rejected,
    TransformConfig,
    partner_transform,
    transform,
)

appsflyer = partner_transform("appsflyer")
branch = partner_transform("branch")
adjust = partner_transform("adjust")


def config(**options: Any) -> TransformConfig:
    """A destination's transform config, from the destinations-file keys (parsing included)."""
    return Destination.model_validate(
        {"id": "d", "accountId": "ACC", "passcode": "pw-123456", **options}
    ).transform_config()


PLAIN = config()


def records(result: object) -> list[dict[str, Any]]:
    assert isinstance(result, Accepted), result
    return [r.data for r in result.records]


def only(result: object) -> dict[str, Any]:
    (record,) = records(result)
    return record


def filtered(result: object) -> str:
    assert isinstance(result, Filtered), result
    assert result.reason in ATTRIBUTION_FILTER_REASONS
    return result.reason


# --- AppsFlyer Push API ------------------------------------------------------------------------

AF_INSTALL: dict[str, Any] = {
    "event_name": "install",
    "event_time": "2026-11-30 08:15:02.518",
    "install_time": "2026-11-30 08:15:00.123",
    "media_source": "googleadwords_int",
    "campaign": "winter",
    "af_adset": "set-1",
    "af_ad": "ad-9",
    "af_channel": "YouTube",
    "customer_user_id": "__ct-1",
    "appsflyer_id": "1764490500000-1234567",
    "platform": "android",
    "app_id": "com.example.a",
}
# 2026-11-30 08:15:00 UTC
AF_INSTALL_TS = 1796026500


def test_appsflyer_inorganic_install() -> None:
    assert only(appsflyer(AF_INSTALL, PLAIN)) == {
        "type": "event",
        "evtName": "Inorganic Install",
        "evtData": {
            "utm_source": "googleadwords_int",
            "utm_medium": "YouTube",
            "utm_campaign": "winter",
            "adset": "set-1",
            "ad": "ad-9",
            "partner": "appsflyer",
        },
        "objectId": "__ct-1",
        "ts": AF_INSTALL_TS,
    }


@pytest.mark.parametrize("source", ["organic", "Organic", None])
def test_appsflyer_organic_install(source: str | None) -> None:
    payload = {**AF_INSTALL, "media_source": source, "campaign": None, "af_adset": None, "af_ad": None}
    payload.pop("af_channel")
    record = only(appsflyer(payload, PLAIN))
    assert record["evtName"] == "Organic Install"
    assert record["evtData"] == {"utm_source": "organic", "partner": "appsflyer"}


def test_appsflyer_reinstall_is_marked() -> None:
    record = only(appsflyer({**AF_INSTALL, "event_name": "reinstall"}, PLAIN))
    assert record["evtName"] == "Inorganic Install"
    assert record["evtData"]["reinstall"] is True


@pytest.mark.parametrize(
    ("install_time", "ts"),
    [
        ("2026-11-30 08:15:00.123", AF_INSTALL_TS),  # AppsFlyer's own format, UTC
        ("2026-11-30 08:15:00", AF_INSTALL_TS),
        ("2026-11-30T08:15:00Z", AF_INSTALL_TS),
        ("2026-11-30T09:15:00+01:00", AF_INSTALL_TS),
    ],
)
def test_appsflyer_times_are_utc_epoch_seconds(install_time: str, ts: int) -> None:
    assert only(appsflyer({**AF_INSTALL, "install_time": install_time}, PLAIN))["ts"] == ts


def test_appsflyer_install_without_install_time_uses_event_time_and_garbage_none() -> None:
    no_install_time = {k: v for k, v in AF_INSTALL.items() if k != "install_time"}
    assert only(appsflyer(no_install_time, PLAIN))["ts"] == AF_INSTALL_TS + 2
    garbage = {**no_install_time, "event_time": "yesterday-ish"}
    assert "ts" not in only(appsflyer(garbage, PLAIN))  # CleverTap then takes its receive time


def test_appsflyer_without_customer_user_id_is_filtered() -> None:
    # AppsFlyer sends no postback without a Customer User ID; CleverTap would drop it.
    for missing in (None, "", "   "):
        assert (
            filtered(appsflyer({**AF_INSTALL, "customer_user_id": missing}, PLAIN)) == "missing_clevertap_id"
        )


def test_appsflyer_customer_user_id_as_identity() -> None:
    record = only(appsflyer(AF_INSTALL, config(attributionUserKey="identity")))
    assert record["identity"] == "__ct-1"
    assert "objectId" not in record


AF_PURCHASE: dict[str, Any] = {
    "event_name": "af_purchase",
    "event_time": "2026-11-30 09:00:00.000",
    "install_time": "2026-11-30 08:15:00.000",
    "event_value": json.dumps(
        {
            "af_revenue": "12.5",
            "af_currency": "EUR",
            "af_content_id": "sku-1",
            "af_quantity": 2,
            "cart": ["a"],
        }
    ),
    "event_revenue": "12.5",
    "event_revenue_currency": "EUR",
    "customer_user_id": "__ct-2",
    "media_source": "Facebook Ads",
}
AF_PURCHASE_TS = 1796029200


def test_appsflyer_in_app_event_default_sends_values_without_revenue() -> None:
    record = only(appsflyer(AF_PURCHASE, config(inAppEvents=[{"name": "af_purchase"}])))
    assert record == {
        "type": "event",
        "evtName": "af_purchase",
        "evtData": {"af_content_id": "sku-1", "af_quantity": 2, "cart": '["a"]'},
        "objectId": "__ct-2",
        "ts": AF_PURCHASE_TS,  # the event's own time, not the install's
    }


def test_in_app_send_none_sends_the_event_alone() -> None:
    cfg = config(inAppEvents=[{"name": "af_purchase", "send": "none"}])
    assert only(appsflyer(AF_PURCHASE, cfg))["evtData"] == {}


def test_in_app_send_values_and_revenue_adds_revenue_and_currency() -> None:
    cfg = config(inAppEvents=[{"name": "af_purchase", "send": "values_and_revenue"}])
    assert only(appsflyer(AF_PURCHASE, cfg))["evtData"] == {
        "af_content_id": "sku-1",
        "af_quantity": 2,
        "cart": '["a"]',
        "revenue": 12.5,
        "currency": "EUR",
    }


def test_in_app_as_charged_puts_the_revenue_in_amount() -> None:
    cfg = config(inAppEvents=[{"name": "af_purchase", "send": "values_and_revenue", "as": "Charged"}])
    record = only(appsflyer(AF_PURCHASE, cfg))
    assert record["evtName"] == "Charged"
    assert record["evtData"]["Amount"] == 12.5
    assert "revenue" not in record["evtData"]


def test_in_app_as_renames_and_unparseable_revenue_is_left_out() -> None:
    cfg = config(inAppEvents=[{"name": "af_purchase", "send": "values_and_revenue", "as": "Bought"}])
    record = only(appsflyer({**AF_PURCHASE, "event_revenue": "twelve"}, cfg))
    assert record["evtName"] == "Bought"
    assert "revenue" not in record["evtData"]


def test_unlisted_in_app_event_is_not_selected() -> None:
    cfg = config(inAppEvents=[{"name": "af_login"}])
    assert filtered(appsflyer(AF_PURCHASE, cfg)) == "event_not_selected"
    assert filtered(appsflyer(AF_PURCHASE, PLAIN)) == "event_not_selected"
    # names match exactly, as AppsFlyer's event picker does
    assert (
        filtered(appsflyer(AF_PURCHASE, config(inAppEvents=[{"name": "AF_PURCHASE"}])))
        == "event_not_selected"
    )


def test_in_app_event_without_user_is_filtered_missing_id() -> None:
    cfg = config(inAppEvents=[{"name": "af_purchase"}])
    payload = {k: v for k, v in AF_PURCHASE.items() if k != "customer_user_id"}
    assert filtered(appsflyer(payload, cfg)) == "missing_clevertap_id"


def test_in_app_event_as_a_reserved_name_is_rejected() -> None:
    # The destinations file refuses such an `as` (tests/test_destinations.py); the transform
    # still never uploads one.
    options = replace(PLAIN.attribution, in_app_events=(InAppEvent("af_purchase", "values", "UTM Visited"),))
    result = appsflyer(AF_PURCHASE, replace(PLAIN, attribution=options))
    assert isinstance(result, Rejected)
    assert result.status == 400


# --- restricted media sources and install names (every partner) ---------------------------------


def test_restricted_media_sources_are_case_insensitive_and_win_over_everything() -> None:
    cfg = config(
        restrictedMediaSources=[" Facebook ADS ", "googleadwords_INT"],
        inAppEvents=[{"name": "af_purchase", "send": "values_and_revenue"}],
    )
    assert filtered(appsflyer(AF_INSTALL, cfg)) == "restricted_media_source"
    assert filtered(appsflyer(AF_PURCHASE, cfg)) == "restricted_media_source"
    no_id = {**AF_INSTALL, "customer_user_id": None}
    assert filtered(appsflyer(no_id, cfg)) == "restricted_media_source"
    # an unrestricted source still goes
    assert (
        only(appsflyer({**AF_INSTALL, "media_source": "tiktok_int"}, cfg))["evtName"] == "Inorganic Install"
    )


def test_restricted_media_sources_apply_to_branch_and_adjust() -> None:
    cfg = config(restrictedMediaSources=["FACEBOOK", "snapchat"])
    assert filtered(branch(BRANCH_INSTALL, cfg)) == "restricted_media_source"
    assert filtered(adjust({**ADJUST_INSTALL, "network_name": "Snapchat"}, cfg)) == "restricted_media_source"


def test_install_event_names_are_configurable() -> None:
    cfg = config(installEventNames={"organic": "App Installed", "inorganic": "Paid Install"})
    assert only(appsflyer(AF_INSTALL, cfg))["evtName"] == "Paid Install"
    assert only(adjust(ADJUST_INSTALL, cfg))["evtName"] == "App Installed"
    # one name given: the other keeps its default
    half = config(installEventNames={"organic": "App Installed"})
    assert only(appsflyer(AF_INSTALL, half))["evtName"] == "Inorganic Install"


# --- Branch webhooks --------------------------------------------------------------------------

BRANCH_INSTALL: dict[str, Any] = {
    "name": "INSTALL",
    "id": "1234567890123456789",
    "timestamp": 1764490500123,  # ms
    "attributed": True,
    "last_attributed_touch_data": {
        "~channel": "facebook",
        "~feature": "paid advertising",
        "~campaign": "black-friday",
        "~ad_set_name": "set-b",
        "~ad_name": "ad-b",
        "~advertising_partner_name": "Facebook",
    },
    "user_data": {"os": "IOS", "developer_identity": "user-42"},
    "custom_data": {"$clevertap_attribution_id": "__ct-br"},
}


def test_branch_referred_install_is_inorganic() -> None:
    assert only(branch(BRANCH_INSTALL, PLAIN)) == {
        "type": "event",
        "evtName": "Inorganic Install",
        "evtData": {
            "utm_source": "facebook",
            "utm_medium": "paid advertising",
            "utm_campaign": "black-friday",
            "adset": "set-b",
            "ad": "ad-b",
            "partner": "branch",
        },
        "objectId": "__ct-br",
        "ts": 1764490500,  # ms → s
    }


@pytest.mark.parametrize("attributed", [False, None, "false"])
def test_branch_non_referred_install_is_organic(attributed: object) -> None:
    payload = {**BRANCH_INSTALL, "attributed": attributed, "last_attributed_touch_data": {}}
    record = only(branch(payload, PLAIN))
    assert record["evtName"] == "Organic Install"
    assert record["evtData"] == {"utm_source": "organic", "partner": "branch"}


def test_branch_attributed_as_text_and_partner_name_as_source() -> None:
    touch = {"~advertising_partner_name": "Google AdWords", "~campaign": "c"}
    payload = {**BRANCH_INSTALL, "attributed": "true", "last_attributed_touch_data": touch}
    data = only(branch(payload, PLAIN))["evtData"]
    assert data["utm_source"] == "Google AdWords"
    assert data["utm_campaign"] == "c"


def test_branch_reinstall() -> None:
    data = only(branch({**BRANCH_INSTALL, "name": "REINSTALL"}, PLAIN))["evtData"]
    assert data["reinstall"] is True


def test_branch_user_matching_and_identity_fallback() -> None:
    no_ct = {**BRANCH_INSTALL, "custom_data": {}}
    assert filtered(branch(no_ct, PLAIN)) == "missing_clevertap_id"
    by_identity = config(attributionUserKey="identity")
    assert only(branch(no_ct, by_identity))["identity"] == "user-42"
    # the CleverTap ID still comes first when present
    assert only(branch(BRANCH_INSTALL, by_identity))["objectId"] == "__ct-br"
    custom_identity = {**no_ct, "user_data": {}, "custom_data": {"identity": "u-7"}}
    assert only(branch(custom_identity, by_identity))["identity"] == "u-7"
    assert filtered(branch({**no_ct, "user_data": {}}, by_identity)) == "missing_clevertap_id"


BRANCH_PURCHASE: dict[str, Any] = {
    "name": "PURCHASE",
    "timestamp": 1764494100000,
    "attributed": True,
    "last_attributed_touch_data": {"~channel": "email"},
    "custom_data": {"$clevertap_attribution_id": "__ct-br", "coupon": "BF"},
    "event_data": {"revenue": 20, "currency": "USD", "transaction_id": "t-1"},
}


def test_branch_in_app_event_values_and_revenue() -> None:
    cfg = config(inAppEvents=[{"name": "PURCHASE", "send": "values_and_revenue", "as": "Charged"}])
    assert only(branch(BRANCH_PURCHASE, cfg)) == {
        "type": "event",
        "evtName": "Charged",
        "evtData": {"coupon": "BF", "transaction_id": "t-1", "Amount": 20, "currency": "USD"},
        "objectId": "__ct-br",
        "ts": 1764494100,
    }
    values_only = config(inAppEvents=[{"name": "PURCHASE"}])
    assert only(branch(BRANCH_PURCHASE, values_only))["evtData"] == {"coupon": "BF", "transaction_id": "t-1"}
    assert filtered(branch({**BRANCH_PURCHASE, "name": "OPEN"}, cfg)) == "event_not_selected"


# --- Adjust callbacks ----------------------------------------------------------------------------

ADJUST_INSTALL: dict[str, Any] = {
    "activity_kind": "install",
    "network_name": "Organic",
    "installed_at": 1764490600,  # epoch seconds
    "created_at": 1764490650,
    "os_name": "android",
    "clevertapId": "__ct-ad",
}


def test_adjust_organic_install() -> None:
    assert only(adjust(ADJUST_INSTALL, PLAIN)) == {
        "type": "event",
        "evtName": "Organic Install",
        "evtData": {"utm_source": "organic", "partner": "adjust"},
        "objectId": "__ct-ad",
        "ts": 1764490600,
    }


def test_adjust_inorganic_install_and_reattribution_reinstall() -> None:
    payload = {
        **ADJUST_INSTALL,
        "network_name": "Google Ads ACI",
        "campaign_name": "winter (123)",
        "adgroup_name": "g-1",
        "creative_name": "c-1",
    }
    assert only(adjust(payload, PLAIN))["evtData"] == {
        "utm_source": "Google Ads ACI",
        "utm_campaign": "winter (123)",
        "adset": "g-1",
        "ad": "c-1",
        "partner": "adjust",
    }
    for kind in ("reinstall", "reattribution_reinstall"):
        record = only(adjust({**payload, "activity_kind": kind}, PLAIN))
        assert record["evtName"] == "Inorganic Install"
        assert record["evtData"]["reinstall"] is True


def test_adjust_times_as_text_and_missing_install_time() -> None:
    assert only(adjust({**ADJUST_INSTALL, "installed_at": "1764490600"}, PLAIN))["ts"] == 1764490600
    no_installed_at = {k: v for k, v in ADJUST_INSTALL.items() if k != "installed_at"}
    assert only(adjust(no_installed_at, PLAIN))["ts"] == 1764490650


def test_adjust_without_clevertap_id_is_filtered_or_uses_identity() -> None:
    payload = {k: v for k, v in ADJUST_INSTALL.items() if k != "clevertapId"}
    assert filtered(adjust(payload, PLAIN)) == "missing_clevertap_id"
    by_identity = config(attributionUserKey="identity")
    assert filtered(adjust(payload, by_identity)) == "missing_clevertap_id"
    assert only(adjust({**payload, "identity": "u-9"}, by_identity))["identity"] == "u-9"
    params = {**payload, "partner_parameters": json.dumps({"identity": "u-10"})}
    assert only(adjust(params, by_identity))["identity"] == "u-10"
    # `clevertapId` set as a global partner parameter arrives inside `{partner_parameters}`
    as_partner_parameter = {**payload, "partner_parameters": json.dumps({"clevertapId": "__ct-pp"})}
    record = only(adjust(as_partner_parameter, PLAIN))
    assert record["objectId"] == "__ct-pp"
    assert record["evtData"] == {"utm_source": "organic", "partner": "adjust"}


def test_adjust_event_with_revenue_and_partner_parameters() -> None:
    payload = {
        "activity_kind": "event",
        "event_name": "purchase",
        "created_at": 1764494100,
        "installed_at": 1764490600,
        "revenue": "4.99",
        "currency": "GBP",
        "clevertapId": "__ct-ad",
        "partner_parameters": json.dumps({"clevertapId": "__ct-ad", "sku": "p-1"}),
    }
    cfg = config(inAppEvents=[{"name": "purchase", "send": "values_and_revenue"}])
    assert only(adjust(payload, cfg)) == {
        "type": "event",
        "evtName": "purchase",
        "evtData": {"sku": "p-1", "revenue": 4.99, "currency": "GBP"},
        "objectId": "__ct-ad",
        "ts": 1764494100,
    }
    assert filtered(adjust({**payload, "event_name": "level_up"}, cfg)) == "event_not_selected"


# --- first-touch profile --------------------------------------------------------------------


def test_attribution_profile_adds_a_first_touch_profile_record() -> None:
    event, profile = records(appsflyer(AF_INSTALL, config(attributionProfile=True)))
    assert event["evtName"] == "Inorganic Install"
    assert profile == {
        "type": "profile",
        "profileData": {
            "Install Source": "googleadwords_int",
            "Install Type": "inorganic",
            "Install Partner": "appsflyer",
            "Install Medium": "YouTube",
            "Install Campaign": "winter",
            "Install Date": f"$D_{AF_INSTALL_TS}",
        },
        "objectId": "__ct-1",
        "ts": AF_INSTALL_TS,
    }
    _, organic = records(adjust(ADJUST_INSTALL, config(attributionProfile=True)))
    assert organic["profileData"]["Install Type"] == "organic"
    assert organic["profileData"]["Install Source"] == "organic"


def test_attribution_profile_is_first_touch_only_and_off_by_default() -> None:
    assert len(records(appsflyer(AF_INSTALL, PLAIN))) == 1
    reinstall = {**AF_INSTALL, "event_name": "reinstall"}
    assert len(records(appsflyer(reinstall, config(attributionProfile=True)))) == 1
    in_app = config(attributionProfile=True, inAppEvents=[{"name": "af_purchase"}])
    assert len(records(appsflyer(AF_PURCHASE, in_app))) == 1


# --- Segment's Install Attributed (RudderStack format) ----------------------------------------

INSTALL_ATTRIBUTED: dict[str, Any] = {
    "type": "track",
    "event": "Install Attributed",
    "anonymousId": "__ct-seg",
    "timestamp": "2025-11-30T08:15:00.000Z",
    "properties": {
        "provider": "Linkrunner",
        "campaign": {
            "source": "meta",
            "medium": "paid_social",
            "name": "launch",
            "ad_group": "g-1",
            "ad_creative": "video-1",
        },
    },
}


def test_install_attributed_in_the_default_profile() -> None:
    assert only(transform(INSTALL_ATTRIBUTED, PLAIN)) == {
        "type": "event",
        "evtName": "Inorganic Install",
        "evtData": {
            "utm_source": "meta",
            "utm_medium": "paid_social",
            "utm_campaign": "launch",
            "adset": "g-1",
            "ad": "video-1",
            "partner": "Linkrunner",
        },
        "objectId": "__ct-seg",
        "ts": 1764490500,
    }


def test_install_attributed_organic_and_identity_first() -> None:
    message = {**INSTALL_ATTRIBUTED, "userId": "u-1", "properties": {"campaign": {"source": "Organic"}}}
    record = only(transform(message, PLAIN))
    assert record["evtName"] == "Organic Install"
    assert record["identity"] == "u-1"  # userId first, as every other RudderStack event
    assert record["evtData"] == {"utm_source": "organic", "partner": "segment"}
    no_user = {k: v for k, v in INSTALL_ATTRIBUTED.items() if k != "anonymousId"}
    assert filtered(transform(no_user, PLAIN)) == "missing_clevertap_id"


def test_install_attributed_follows_the_destination_options() -> None:
    cfg = config(restrictedMediaSources=["META"], installEventNames={"inorganic": "Paid"})
    assert filtered(transform(INSTALL_ATTRIBUTED, cfg)) == "restricted_media_source"
    other = {**INSTALL_ATTRIBUTED, "properties": {"campaign": {"source": "tiktok"}}}
    assert only(transform(other, cfg))["evtName"] == "Paid"


def test_install_attributed_is_a_plain_event_in_the_rudderstack_profile() -> None:
    cfg = config(profile="rudderstack", trackAnonymous=True)
    assert cfg.profile is Profile.RUDDERSTACK
    record = only(transform(INSTALL_ATTRIBUTED, cfg))
    assert record["evtName"] == "Install Attributed"
    assert "utm_source" not in record["evtData"]


# --- never a crash --------------------------------------------------------------------------

JSON_SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text()
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
KNOWN_KEYS = st.sampled_from(
    [
        "event_name", "event_time", "install_time", "media_source", "customer_user_id", "event_value",
        "event_revenue", "name", "timestamp", "attributed", "custom_data", "event_data", "user_data",
        "last_attributed_touch_data", "activity_kind", "network_name", "installed_at", "created_at",
        "clevertapId", "revenue", "partner_parameters", "type", "event", "properties", "anonymousId", "userId",
    ]
)  # fmt: skip
VALUES = st.one_of(
    JSON,
    st.sampled_from(
        ["install", "reinstall", "INSTALL", "PURCHASE", "af_purchase", "Install Attributed", "track"]
    ),
    st.sampled_from(["2026-11-30 08:15:00.000", "1764490500", "{", '{"af_revenue": 1}', "organic"]),
)
PAYLOADS = st.dictionaries(KNOWN_KEYS | st.text(max_size=8), VALUES, max_size=10)
EVERYTHING_ON = config(
    attributionUserKey="identity",
    attributionProfile=True,
    restrictedMediaSources=["organic"],
    inAppEvents=[
        {"name": "af_purchase", "send": "values_and_revenue", "as": "Charged"},
        {"name": "PURCHASE", "send": "none"},
        {"name": "event", "send": "values"},
    ],
)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@settings(max_examples=300, deadline=None)
@given(payload=PAYLOADS | JSON, options=st.sampled_from([PLAIN, EVERYTHING_ON]))
def test_arbitrary_json_payloads_never_raise(fmt: str, payload: Any, options: TransformConfig) -> None:
    result = FORMATS[fmt](payload, options)
    assert isinstance(result, Accepted | Rejected | Filtered)
    if isinstance(result, Accepted):
        for record in result.records:
            assert ("objectId" in record.data) != ("identity" in record.data)
            ts = record.data.get("ts")
            assert ts is None or type(ts) is int


# --- attributionPartner: installs as /attribution parameters (reference §7.2) -----------------


def only_records(result: object) -> tuple[Any, ...]:
    assert isinstance(result, Accepted), result
    return result.records


PARTNER = config(attributionPartner={"name": "acme", "accountToken": "tok-123456"})


def test_partner_installs_become_attribution_records_with_the_platform() -> None:
    result = appsflyer(AF_INSTALL, PARTNER)
    assert isinstance(result, Accepted)
    (record,) = result.records
    assert record.kind == "attribution"
    assert record.data["partner_name"] == "acme"
    assert record.data["event_type"] == "inorganic_install"
    assert record.data["device_identifier"] == AF_INSTALL["customer_user_id"]
    assert record.data["platform"] == AF_INSTALL["platform"]
    assert {"utm_source", "timestamp"} <= record.data.keys()
    assert "tok-123456" not in repr(record.data)
    organic = {"activity_kind": "install", "network_name": "Organic", "clevertapId": "c1", "os_name": "ios"}
    (adj,) = only_records(adjust(organic, PARTNER))
    assert (adj.kind, adj.data["event_type"], adj.data["platform"], adj.data["utm_source"]) == (
        "attribution",
        "organic_install",
        "ios",
        "organic",
    )
    br = {
        "name": "INSTALL",
        "custom_data": {"$clevertap_attribution_id": "c2"},
        "user_data": {"os": "Android"},
    }
    (b,) = only_records(branch(br, PARTNER))
    assert (b.kind, b.data["platform"], b.data["device_identifier"]) == ("attribution", "Android", "c2")


def test_partner_option_keeps_in_app_events_and_identity_installs_on_upload() -> None:
    cfg = config(
        attributionPartner={"name": "acme", "accountToken": "tok-123456"},
        inAppEvents=[{"name": "af_login"}],
        attributionUserKey="identity",
    )
    (event,) = only_records(appsflyer({"event_name": "af_login", "customer_user_id": "u1"}, cfg))
    assert (event.kind, event.data["evtName"]) == ("event", "af_login")
    # Matched by identity, not by CleverTap ID: the partner endpoint cannot take it; it uploads.
    (install,) = only_records(appsflyer({**AF_INSTALL, "customer_user_id": "u1"}, cfg))
    assert (install.kind, install.data["identity"]) == ("event", "u1")

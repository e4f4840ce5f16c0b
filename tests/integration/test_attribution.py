"""Attribution and JSON topics end to end: partner payloads and RudderStack JSON messages on
real Kafka topics, bound by `sources:`, arriving at the fake CleverTap as specified."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from consumer.source import message_headers
from tests.support.fake_clevertap import DEFAULT_ACCOUNTS
from tests.support.service import Bed, wait_for

pytestmark = pytest.mark.kafka

ONE, TWO = DEFAULT_ACCOUNTS["ACC-ONE"], DEFAULT_ACCOUNTS["ACC-TWO"]

APPSFLYER = [
    {  # an inorganic install of app A: ACC-ONE
        "event_name": "install",
        "install_time": "2026-11-30 08:15:00.000",
        "event_time": "2026-11-30 08:15:02.000",
        "media_source": "googleadwords_int",
        "campaign": "winter",
        "af_adset": "set-1",
        "af_ad": "ad-9",
        "af_channel": "YouTube",
        "customer_user_id": "__ct-af-1",
        "app_id": "com.example.a",
        "platform": "android",
    },
    {  # an in-app purchase of app B: ACC-TWO, as Charged with the revenue
        "event_name": "af_purchase",
        "event_time": "2026-11-30 09:00:00",
        "event_value": json.dumps({"af_revenue": "12.5", "af_content_id": "sku-1"}),
        "event_revenue": "12.5",
        "event_revenue_currency": "EUR",
        "customer_user_id": "__ct-af-2",
        "app_id": "com.example.b",
    },
    {"event_name": "af_login", "customer_user_id": "__ct-af-3", "app_id": "com.example.a"},  # not listed
    {
        "event_name": "install",
        "media_source": "restricted_net",
        "customer_user_id": "x",
        "app_id": "com.example.a",
    },
    {"event_name": "install", "media_source": "organic", "app_id": "com.example.a"},  # no CleverTap ID
    {"event_name": "install", "customer_user_id": "__ct-af-4", "app_id": "com.unknown"},  # unroutable
]
BRANCH = [
    {
        "name": "REINSTALL",
        "timestamp": 1764490500000,
        "attributed": True,
        "last_attributed_touch_data": {"~channel": "facebook", "~feature": "paid", "~campaign": "bf"},
        "custom_data": {"$clevertap_attribution_id": "__ct-br-1"},
        "user_data": {"os": "IOS"},
    }
]
ADJUST = [
    {
        "activity_kind": "install",
        "network_name": "Organic",
        "installed_at": 1764490600,
        "clevertapId": "__ct-ad-1",
    }
]
RUDDERSTACK_JSON = [
    {"type": "track", "event": "Song Played", "userId": "u-json-1", "destinationId": "dest-two"},
]


def _destinations() -> dict[str, Any]:
    in_app = [{"name": "af_purchase", "send": "values_and_revenue", "as": "Charged"}]
    return {
        "destinations": [
            {
                "id": "app-a",
                "accountId": "ACC-ONE",
                "passcode": ONE,
                "restrictedMediaSources": ["Restricted_Net"],
            },
            {"id": "app-b", "accountId": "ACC-TWO", "passcode": TWO, "inAppEvents": in_app},
            {"id": "dest-two", "accountId": "ACC-TWO", "passcode": TWO},
        ],
        "sources": [],
    }


def test_partner_payloads_and_rudderstack_json_arrive_as_specified(
    bed: Bed, new_topic: Callable[..., str]
) -> None:
    topics = {fmt: new_topic(suffix=f"-{fmt}") for fmt in ("appsflyer", "branch", "adjust", "rs")}
    doc = _destinations()
    doc["sources"] = [
        {
            "topic": topics["appsflyer"],
            "format": "appsflyer",
            "destinationBy": {"field": "app_id", "map": {"com.example.a": "app-a", "com.example.b": "app-b"}},
        },
        {"topic": topics["branch"], "format": "branch", "destination": "app-a"},
        {"topic": topics["adjust"], "format": "adjust", "destination": "app-b"},
        {"topic": topics["rs"]},  # RudderStack messages as JSON, routed by destinationId as ever
    ]
    bed.destinations_file.write_text(json.dumps(doc))
    for fmt, payloads in (
        ("appsflyer", APPSFLYER),
        ("branch", BRANCH),
        ("adjust", ADJUST),
        ("rs", RUDDERSTACK_JSON),
    ):
        bed.kafka.produce(topics[fmt], [orjson.dumps(p) for p in payloads])
    service = bed.service(KAFKA_TOPICS=",".join(topics.values()))
    service.wait_ready()

    def arrived() -> bool:
        return len(bed.fake.records("ACC-ONE")) >= 2 and len(bed.fake.records("ACC-TWO")) >= 3

    wait_for(arrived, 90, lambda: f"{bed.fake.records()}\n{service.log_tail()}")
    one = sorted(bed.fake.records("ACC-ONE"), key=lambda r: r["objectId"])
    two = sorted(bed.fake.records("ACC-TWO"), key=lambda r: str(r.get("objectId") or r.get("identity")))
    assert one == [
        {
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
            "objectId": "__ct-af-1",
            "ts": 1796026500,
        },
        {
            "type": "event",
            "evtName": "Inorganic Install",
            "evtData": {
                "utm_source": "facebook",
                "utm_medium": "paid",
                "utm_campaign": "bf",
                "partner": "branch",
                "reinstall": True,
            },
            "objectId": "__ct-br-1",
            "ts": 1764490500,
        },
    ]
    assert two[0] == {
        "type": "event",
        "evtName": "Organic Install",
        "evtData": {"utm_source": "organic", "partner": "adjust"},
        "objectId": "__ct-ad-1",
        "ts": 1764490600,
    }
    assert two[1] == {
        "type": "event",
        "evtName": "Charged",
        "evtData": {"af_content_id": "sku-1", "Amount": 12.5, "currency": "EUR"},
        "objectId": "__ct-af-2",
        "ts": 1796029200,
    }
    assert (two[2]["identity"], two[2]["evtName"]) == ("u-json-1", "Song Played")

    # The unroutable AppsFlyer install is dead-lettered with the precise reason; the filtered
    # ones are counted by reason, and every topic is committed to its end.
    (letter,) = bed.dead_letters(1)
    headers = dict(message_headers(letter))
    assert headers["dlq.stage"] == b"route"
    assert headers["dlq.reason"] == b"unknown_destination"
    assert b"app_id 'com.unknown'" in (headers["dlq.message"] or b"")
    filtered = Counter(
        {
            reason: service.metric_sum("clevertap_consumer_events_filtered_total", reason=reason)
            for reason in ("event_not_selected", "restricted_media_source", "missing_clevertap_id")
        }
    )
    assert filtered == Counter(event_not_selected=1, restricted_media_source=1, missing_clevertap_id=1)
    for topic in topics.values():
        end = bed.kafka.end_offsets(topic)
        wait_for(lambda t=topic, e=end: bed.kafka.committed(bed.group, t) == e, 60)  # type: ignore[misc]
    assert service.terminate() == 0

"""`attributionPartner` end to end: AppsFlyer installs on a real Kafka topic go one by one to the
fake CleverTap's `/attribution` (reference §7.2) with the account token, in-app events still go
to /1/upload, a 400 is dead-lettered at once with CleverTap's code, and the token is never
logged."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from consumer.source import message_headers
from tests.support.fake_clevertap import DEFAULT_ACCOUNTS, FakeCleverTapProcess
from tests.support.service import Bed, wait_for

pytestmark = pytest.mark.kafka

ONE = DEFAULT_ACCOUNTS["ACC-ONE"]
TOKEN = "tok-SECRET-9f3k2"
INSTALL = {
    "event_name": "install",
    "install_time": "2026-11-30 08:15:00.000",
    "media_source": "googleadwords_int",
    "campaign": "winter",
    "af_channel": "YouTube",
    "customer_user_id": "__ct-p-1",
    "platform": "android",
}
ORGANIC = {
    "event_name": "install",
    "install_time": 1764490600,
    "customer_user_id": "__ct-p-2",
    "platform": "ios",
}
PURCHASE = {
    "event_name": "af_purchase",
    "event_time": "2026-11-30 09:00:00",
    "event_revenue": "3",
    "customer_user_id": "__ct-p-1",
}


def _run(bed: Bed, fake: FakeCleverTapProcess, new_topic: Callable[..., str], partner: str) -> Any:
    topic = new_topic(suffix="-af")
    doc = {
        "destinations": [
            {
                "id": "app",
                "accountId": "ACC-ONE",
                "passcode": ONE,
                "attributionPartner": {"name": partner, "accountToken": TOKEN},
                "inAppEvents": [{"name": "af_purchase", "send": "values_and_revenue", "as": "Charged"}],
            }
        ],
        "sources": [{"topic": topic, "format": "appsflyer", "destination": "app"}],
    }
    bed.destinations_file.write_text(json.dumps(doc))
    bed.kafka.produce(topic, [orjson.dumps(p) for p in (INSTALL, ORGANIC, PURCHASE)])
    service = bed.service(KAFKA_TOPICS=topic, CLEVERTAP_BASE_URL=fake.url, LOG_LEVEL="DEBUG")
    service.wait_ready()
    return service


def test_installs_go_to_the_partner_endpoint_and_in_app_events_to_upload(
    bed: Bed, start_fake: Callable[..., FakeCleverTapProcess], new_topic: Callable[..., str]
) -> None:
    fake = start_fake(attribution_tokens={"ACC-ONE": TOKEN}, attribution_partners=("acme",))
    service = _run(bed, fake, new_topic, "acme")
    wait_for(lambda: len(fake.attributions()) >= 2 and bool(fake.records()), 60, service.log_tail)
    got = sorted(fake.attributions(), key=lambda a: a["device_identifier"])
    assert got == [
        {
            "partner_name": "acme",
            "event_type": "inorganic_install",
            "device_identifier": "__ct-p-1",
            "platform": "android",
            "utm_source": "googleadwords_int",
            "utm_medium": "YouTube",
            "utm_campaign": "winter",
            "timestamp": "1796026500",
            "account_id": "ACC-ONE",
        },
        {
            "partner_name": "acme",
            "event_type": "organic_install",
            "device_identifier": "__ct-p-2",
            "platform": "ios",
            "utm_source": "organic",
            "timestamp": "1764490600",
            "account_id": "ACC-ONE",
        },
    ]
    (charged,) = fake.records("ACC-ONE")  # only the in-app event used /1/upload
    assert (charged["evtName"], charged["evtData"]["Amount"]) == ("Charged", 3)
    assert service.terminate() == 0
    assert TOKEN not in service.log_path.read_text()


def test_a_400_is_dead_lettered_with_the_code_and_not_retried(
    bed: Bed, start_fake: Callable[..., FakeCleverTapProcess], new_topic: Callable[..., str]
) -> None:
    fake = start_fake(attribution_tokens={"ACC-ONE": TOKEN}, attribution_partners=("acme",))
    service = _run(bed, fake, new_topic, "not-whitelisted")
    letters = bed.dead_letters(2)
    for letter in letters:
        headers = dict(message_headers(letter))
        assert headers["dlq.stage"] == b"deliver"
        assert headers["dlq.reason"] == b"clevertap_rejected"
        assert headers["dlq.clevertap.code"] == b"400"
        assert b"not whitelisted" in (headers["dlq.message"] or b"")
        assert all(TOKEN.encode() not in (v or b"") for _, v in headers.items())
    assert fake.attributions() == []
    assert service.metric_sum("clevertap_consumer_delivery_retries_total") == 0
    wait_for(lambda: bool(fake.records("ACC-ONE")), 30, service.log_tail)  # the purchase still uploads
    assert service.terminate() == 0
    assert TOKEN not in service.log_path.read_text()


def test_5xx_is_retried_until_the_endpoint_is_back(
    bed: Bed, start_fake: Callable[..., FakeCleverTapProcess], new_topic: Callable[..., str]
) -> None:
    fake = start_fake(attribution_tokens={"ACC-ONE": TOKEN}, attribution_partners=("acme",))
    fake.set_faults(account="ACC-ONE", down=True)  # 503 for every request of the account
    service = _run(bed, fake, new_topic, "acme")
    wait_for(
        lambda: service.metric_sum("clevertap_consumer_delivery_retries_total", reason="server_error") >= 2,
        30,
        service.log_tail,
    )
    fake.set_faults(account="ACC-ONE", down=False)
    wait_for(lambda: len(fake.attributions()) >= 2, 60, service.log_tail)
    assert sorted(a["device_identifier"] for a in fake.attributions()) == ["__ct-p-1", "__ct-p-2"]
    assert service.terminate() == 0
    assert TOKEN not in service.log_path.read_text()


def test_a_401_goes_through_the_accounts_auth_breaker(
    bed: Bed, start_fake: Callable[..., FakeCleverTapProcess], new_topic: Callable[..., str]
) -> None:
    fake = start_fake(attribution_tokens={"ACC-ONE": "another-token"}, attribution_partners=("acme",))
    service = _run(bed, fake, new_topic, "acme")
    reasons = {dict(message_headers(letter))["dlq.reason"] for letter in bed.dead_letters(2)}
    assert reasons <= {b"unauthorized", b"auth_failed"}
    assert b"unauthorized" in reasons
    wait_for(
        lambda: service.metric_sum("clevertap_consumer_auth_breaker_open", account="ACC-ONE") == 1,
        30,
        service.log_tail,
    )
    assert service.terminate() == 0
    assert TOKEN not in service.log_path.read_text()

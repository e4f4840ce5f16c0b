"""The fake's `/attribution` answers as CleverTap documents its generic partner endpoint
(reference §7.2): query-string parameters, one event per request, 400/401 rules, secrets kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from consumer.fake_clevertap import FakeCleverTap

pytestmark = pytest.mark.timeout(60)

INSTALL = {
    "partner_name": "acme",
    "event_type": "inorganic_install",
    "device_identifier": "__ct-1",
    "account_id": "ACC-1",
    "account_token": "tok-123456",
    "account_passcode": "pass-123456",
    "platform": "android",
    "utm_source": "facebook",
    "utm_campaign": "winter",
    "timestamp": "1764490500",
}


@pytest.fixture
def fake() -> Iterator[FakeCleverTap]:
    with FakeCleverTap(
        accounts={"ACC-1": "pass-123456"},
        attribution_tokens={"ACC-1": "tok-123456"},
        attribution_partners=("acme",),
    ) as server:
        yield server


def call(fake: FakeCleverTap, method: str = "POST", **params: Any) -> httpx.Response:
    return httpx.request(method, f"{fake.url}/attribution", params=params, timeout=10)


def recorded(fake: FakeCleverTap, **query: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = httpx.get(f"{fake.url}/_fake/attributions", params=query, timeout=10).json()[
        "attributions"
    ]
    return got


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_an_install_is_accepted_and_recorded_without_secrets(fake: FakeCleverTap, method: str) -> None:
    reply = call(fake, method, **INSTALL)
    assert (reply.status_code, reply.json()) == (200, {"status": "success"})
    (got,) = recorded(fake, account="ACC-1")
    assert got == {k: v for k, v in INSTALL.items() if k not in ("account_token", "account_passcode")}
    assert recorded(fake, account="ACC-2") == []


@pytest.mark.parametrize(
    "missing", ["partner_name", "event_type", "device_identifier", "platform", "account_token"]
)
def test_a_missing_required_parameter_is_400_naming_it(fake: FakeCleverTap, missing: str) -> None:
    params = {k: v for k, v in INSTALL.items() if k != missing}
    reply = call(fake, **params)
    assert reply.status_code == 400
    assert missing in reply.json()["error"]
    blank = call(fake, **{**INSTALL, missing: " "})
    assert blank.status_code == 400
    assert recorded(fake) == []


def test_partner_whitelist_installs_need_a_utm_and_timestamps_are_epochs(fake: FakeCleverTap) -> None:
    assert call(fake, **{**INSTALL, "partner_name": "other"}).json()["error"] == "partner is not whitelisted"
    no_utm = {k: v for k, v in INSTALL.items() if not k.startswith("utm_")}
    assert call(fake, **no_utm).status_code == 400
    assert call(fake, **{**no_utm, "utm_medium": "cpc"}).status_code == 200  # one of the three suffices
    assert call(fake, **{**no_utm, "event_type": "Checkout"}).status_code == 200  # custom events need none
    assert call(fake, **{**INSTALL, "timestamp": "2026-11-30"}).status_code == 400
    assert call(fake, **{k: v for k, v in INSTALL.items() if k != "timestamp"}).status_code == 200


@pytest.mark.parametrize(
    "wrong", [{"account_token": "tok-other"}, {"account_passcode": "nope-123"}, {"account_id": "ACC-9"}]
)
def test_wrong_account_info_is_401(fake: FakeCleverTap, wrong: dict[str, str]) -> None:
    reply = call(fake, **{**INSTALL, **wrong})
    assert reply.status_code == 401
    assert reply.json() == {"status": "fail", "error": "Invalid Account Info", "code": 401}


def test_server_faults_apply(fake: FakeCleverTap) -> None:
    fake.state.set_faults({"account": "ACC-1", "down": True})
    assert call(fake, **INSTALL).status_code == 503
    fake.state.set_faults({"account": "ACC-1", "status_5xx_rate": 1.0})
    assert call(fake, **INSTALL).status_code in (500, 502, 503, 504)
    fake.state.reset()
    assert call(fake, **INSTALL).status_code == 200

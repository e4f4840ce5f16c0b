"""The fake CleverTap answers like CleverTap: credentials, body shape, per-record codes, the
concurrency cap; and its faults and control API behave as the tests that lean on them expect."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from consumer.cli import main
from tests.support.fake_clevertap import FakeCleverTapProcess

pytestmark = pytest.mark.timeout(60)  # a hang fails fast; no test here comes close

ACCOUNT, PASSCODE = "ACC-ONE", "pass-one"
TS = 1_700_000_000


def _event(**fields: Any) -> dict[str, Any]:
    return {
        "type": "event",
        "identity": "u-1",
        "ts": TS,
        "evtName": "Product Viewed",
        "evtData": {"sku": "a"},
    } | fields


def _profile(**profile_data: Any) -> dict[str, Any]:
    return {"type": "profile", "identity": "u-1", "ts": TS, "profileData": {"Name": "Ann", **profile_data}}


def _token(**token_data: Any) -> dict[str, Any]:
    return {"type": "token", "objectId": "__g123", "tokenData": {"id": "tok", "type": "fcm"} | token_data}


def _post(
    fake: FakeCleverTapProcess,
    records: list[Any] | None = None,
    *,
    account: str = ACCOUNT,
    passcode: str = PASSCODE,
    content_type: str = "application/json; charset=utf-8",
    content: bytes | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    headers = {
        "X-CleverTap-Account-Id": account,
        "X-CleverTap-Passcode": passcode,
        "Content-Type": content_type,
    }
    if content is None:
        content = httpx.Request("POST", "/", json={"d": records or []}).content
    return httpx.post(fake.upload_url, content=content, headers=headers, timeout=timeout, trust_env=False)


def _wait_for(condition: Callable[[], bool], what: str, limit_s: float = 20.0) -> None:
    """Poll until `condition` holds; the limit only keeps a broken build from hanging."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def test_valid_records_are_accepted_and_recorded_without_the_passcode(
    fake_clevertap: FakeCleverTapProcess,
) -> None:
    records = [_event(), _profile(Email="a@example.com", Phone="+14155550100", Gender="F"), _token()]
    reply = _post(fake_clevertap, records)
    assert reply.status_code == 200
    assert reply.json() == {"status": "success", "processed": 3, "unprocessed": []}
    assert fake_clevertap.records(ACCOUNT) == records
    [request] = fake_clevertap.requests(ACCOUNT)
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["x-clevertap-account-id"] == ACCOUNT
    assert "x-clevertap-passcode" not in headers
    assert PASSCODE not in str(fake_clevertap.requests()) + str(fake_clevertap.stats())


BAD_RECORDS: list[tuple[str, Any, int]] = [
    ("unknown type", {"type": "click", "identity": "u"}, 524),
    ("not an object", "hello", 524),
    ("no identifier", {"type": "event", "evtName": "x"}, 523),
    ("two identifiers", _event(objectId="__g1"), 523),
    ("empty identity", _event(identity=""), 523),
    ("ts in milliseconds", _event(ts=TS * 1000), 525),
    ("ts as float", _event(ts=TS + 0.5), 525),
    ("ts as string", _event(ts=str(TS)), 525),
    ("no event name", _event(evtName=None), 509),
    ("restricted event", _event(evtName="app launched"), 513),
    ("101 properties", _event(evtData={f"p{i}": i for i in range(101)}), 522),
    ("evtData not an object", _event(evtData=[1, 2]), 512),
    ("nested property", _event(evtData={"a": {"b": 1}}), 512),
    ("array property", _event(evtData={"a": [1]}), 512),
    ("key over 120 bytes", _event(evtData={"k" * 121: 1}), 512),
    ("value over 512 bytes", _event(evtData={"k": "é" * 257}), 512),
    ("bad gender", _profile(Gender="Female"), 514),
    ("bad email", _profile(Email="not-an-email"), 515),
    ("phone not E.164", _profile(Phone="4155550100"), 516),
    ("employed as a boolean", _profile(Employed=True), 517),
    ("unknown education", _profile(Education="PhD"), 518),
    ("married as a word", _profile(Married="yes"), 519),
    ("token without objectId", {"type": "token", "tokenData": {"id": "t", "type": "fcm"}}, 530),
    ("token without id", _token(id=None), 532),
    ("token without type", _token(type=None), 533),
    ("token of unknown type", _token(type="sms"), 534),
]


def test_each_invalid_record_gets_clevertaps_code_and_its_1_based_number(
    fake_clevertap: FakeCleverTapProcess,
) -> None:
    records: list[Any] = []
    expected: dict[int, int] = {}
    for _, record, code in BAD_RECORDS:
        records.append(_event(identity=f"ok-{len(records)}"))
        records.append(record)
        expected[len(records)] = code  # 1-based, as CleverTap numbers them
    reply = _post(fake_clevertap, records).json()
    assert reply["status"] == "partial"
    assert reply["processed"] == len(BAD_RECORDS)
    got = {}
    for entry in reply["unprocessed"]:
        number = int(re.search(r"Skipped record number : (\d+)$", entry["error"]).group(1))  # type: ignore[union-attr]
        assert entry["record"] == records[number - 1]
        assert f"ErrorCode: {entry['code']}" in entry["error"]
        got[number] = entry["code"]
    assert got == expected
    assert fake_clevertap.records() == records[::2]


def test_charged_items_may_be_an_array_of_flat_objects(fake_clevertap: FakeCleverTapProcess) -> None:
    ok = _event(evtName="Charged", evtData={"Amount": 10, "Items": [{"sku": "a", "qty": 1}]})
    nested = _event(evtName="Charged", evtData={"Items": [{"sku": {"id": 1}}]})
    not_charged = _event(evtData={"Items": [{"sku": "a"}]})
    reply = _post(fake_clevertap, [ok, nested, not_charged]).json()
    assert [e["code"] for e in reply["unprocessed"]] == [512, 512]
    assert fake_clevertap.records() == [ok]


def test_a_request_with_only_bad_records_fails(fake_clevertap: FakeCleverTapProcess) -> None:
    reply = _post(fake_clevertap, [_event(evtName=""), _event(identity=None)]).json()
    assert reply["status"] == "fail"
    assert reply["processed"] == 0
    assert [e["code"] for e in reply["unprocessed"]] == [509, 523]


@pytest.mark.parametrize(
    ("account", "passcode"), [("ACC-ONE", "wrong"), ("NOBODY", "pass-one"), ("ACC-ONE", "")]
)
def test_bad_credentials_are_401(fake_clevertap: FakeCleverTapProcess, account: str, passcode: str) -> None:
    reply = _post(fake_clevertap, [_event()], account=account, passcode=passcode)
    assert reply.status_code == 401
    assert reply.json() == {"status": "fail", "error": "Invalid Credentials", "code": 401}
    assert fake_clevertap.records() == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"not json", "application/json"),
        (b'{"records": []}', "application/json"),
        (b'{"d": {"type": "event"}}', "application/json"),
        (b'{"d": []}', "text/plain"),
        (httpx.Request("POST", "/", json={"d": [_event()] * 1001}).content, "application/json"),
        (httpx.Request("POST", "/", json={"d": [_token()] * 101}).content, "application/json"),
    ],
    ids=["not-json", "no-d", "d-not-a-list", "wrong-content-type", "1001-records", "101-tokens"],
)
def test_malformed_requests_are_400(
    fake_clevertap: FakeCleverTapProcess, content: bytes, content_type: str
) -> None:
    reply = _post(fake_clevertap, content=content, content_type=content_type)
    assert reply.status_code == 400
    assert reply.json() == {"status": "fail", "error": "Malformed request", "code": 400}


def test_1000_records_and_100_tokens_are_within_limits(fake_clevertap: FakeCleverTapProcess) -> None:
    assert _post(fake_clevertap, [_event()] * 900 + [_token()] * 100).json()["processed"] == 1000


def test_requests_over_the_concurrency_cap_get_429(start_fake: Callable[..., FakeCleverTapProcess]) -> None:
    fake = start_fake(max_concurrent=2, faults={"account": ACCOUNT, "timeout_rate": 1})
    hung = [threading.Thread(target=_ignore_errors, args=(fake,)) for _ in range(2)]
    for t in hung:
        t.start()
    _wait_for(lambda: fake.stats()["accounts"].get(ACCOUNT, {}).get("in_flight") == 2, "two hanging requests")
    reply = _post(fake, [_event()])
    assert reply.status_code == 429
    assert reply.json() == {"status": "fail", "error": "Too many concurrent requests", "code": 429}
    stats = fake.stats()
    assert stats["max_concurrency"][ACCOUNT] == 3  # the refused request counts as seen
    assert stats["requests"]["429"] == 1
    assert _post(fake, [_event()], account="ACC-TWO", passcode="pass-two").status_code == 200  # per account
    fake.reset()  # releases the hanging requests
    for t in hung:
        t.join()


def _ignore_errors(fake: FakeCleverTapProcess) -> None:
    with contextlib.suppress(httpx.TransportError):
        _post(fake, [_event()], timeout=60)


def test_a_timeout_fault_holds_the_request_until_the_client_gives_up(
    fake_clevertap: FakeCleverTapProcess,
) -> None:
    fake_clevertap.set_faults(timeout_rate=1)
    with pytest.raises(httpx.ReadTimeout):
        _post(fake_clevertap, [_event()], timeout=0.3)
    _wait_for(lambda: fake_clevertap.stats()["accounts"][ACCOUNT]["in_flight"] == 0, "the fake to notice")
    assert fake_clevertap.stats()["requests"] == {"timeout": 1}
    assert fake_clevertap.records() == []


def test_a_reset_fault_drops_the_connection_without_a_reply(fake_clevertap: FakeCleverTapProcess) -> None:
    fake_clevertap.set_faults(reset_rate=1)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        _post(fake_clevertap, [_event()])
    assert fake_clevertap.stats()["requests"] == {"reset": 1}
    assert fake_clevertap.records() == []


def test_down_answers_503_for_one_account_or_all(fake_clevertap: FakeCleverTapProcess) -> None:
    fake_clevertap.set_faults(account=ACCOUNT, down=True)
    assert _post(fake_clevertap, [_event()]).status_code == 503
    assert _post(fake_clevertap, [_event()], account="ACC-TWO", passcode="pass-two").status_code == 200
    fake_clevertap.set_faults(down=True)
    assert _post(fake_clevertap, [_event()], account="ACC-TWO", passcode="pass-two").status_code == 503
    fake_clevertap.reset()
    assert _post(fake_clevertap, [_event()]).status_code == 200


def test_partial_fault_answers_555_for_valid_records_only(fake_clevertap: FakeCleverTapProcess) -> None:
    fake_clevertap.set_faults(partial_rate=1)
    reply = _post(fake_clevertap, [_event(), _event(evtName="")]).json()
    assert reply["status"] == "fail"
    assert [e["code"] for e in reply["unprocessed"]] == [555, 509]
    assert fake_clevertap.stats()["codes"] == {"555": 1, "509": 1}


def _statuses(fake: FakeCleverTapProcess, n: int) -> list[int]:
    out = []
    for _ in range(n):
        try:
            out.append(_post(fake, [_event()] * 5, timeout=10).status_code)
        except httpx.TransportError:
            out.append(0)
    return out


def test_faults_replay_with_the_same_seed(fake_clevertap: FakeCleverTapProcess) -> None:
    faults = {
        "status_5xx_rate": 0.3,
        "status_429_rate": 0.2,
        "reset_rate": 0.1,
        "partial_rate": 0.2,
        "seed": 42,
    }
    fake_clevertap.set_faults(**faults)
    first = _statuses(fake_clevertap, 30)
    first_records = fake_clevertap.records()
    fake_clevertap.reset()
    fake_clevertap.set_faults(**faults)
    assert _statuses(fake_clevertap, 30) == first
    assert fake_clevertap.records() == first_records
    assert {200, 429, 0} <= set(first)
    assert any(s >= 500 for s in first)
    assert 0 < len(first_records) < 5 * first.count(200)  # some records were answered 555


def test_bad_fault_settings_are_refused(fake_clevertap: FakeCleverTapProcess) -> None:
    for body in ({"status_5xx_rat": 0.5}, {"reset_rate": 2}, {"down": "yes"}, {"seed": "x"}):
        reply = httpx.post(f"{fake_clevertap.url}/_fake/faults", json=body, trust_env=False)
        assert reply.status_code == 400, body


def test_records_and_stats_are_kept_per_account(fake_clevertap: FakeCleverTapProcess) -> None:
    _post(fake_clevertap, [_event(identity="a"), _event(evtName="")])
    _post(fake_clevertap, [_event(identity="b")], account="ACC-TWO", passcode="pass-two")
    assert fake_clevertap.records("ACC-TWO") == [_event(identity="b")]
    assert [r["identity"] for r in fake_clevertap.records()] == ["a", "b"]
    stats = fake_clevertap.stats()
    assert stats["accounts"]["ACC-ONE"]["processed"] == 1
    assert stats["accounts"]["ACC-ONE"]["unprocessed"] == 1
    assert stats["records"] == {"processed": 2, "unprocessed": 1}
    assert stats["requests"] == {"200": 2}


def test_any_account_accepts_unknown_accounts_but_not_wrong_known_passcodes(
    start_fake: Callable[..., FakeCleverTapProcess],
) -> None:
    fake = start_fake(accounts={"KNOWN": "right"}, any_account=True)
    assert _post(fake, [_event()], account="WHOEVER", passcode="whatever").status_code == 200
    assert _post(fake, [_event()], account="KNOWN", passcode="wrong").status_code == 401


def test_the_process_stops_cleanly_on_sigterm(start_fake: Callable[..., FakeCleverTapProcess]) -> None:
    fake = start_fake(faults={"timeout_rate": 1})
    waiting = threading.Thread(target=_ignore_errors, args=(fake,))
    waiting.start()
    _wait_for(lambda: fake.stats()["accounts"].get(ACCOUNT, {}).get("in_flight") == 1, "a hanging request")
    assert fake.stop() == 0  # even with a request hanging
    waiting.join()


def test_the_cli_command_is_registered() -> None:
    result = CliRunner().invoke(main, ["fake-clevertap", "--help"])
    assert result.exit_code == 0
    assert "--max-concurrent" in result.output
    result = CliRunner().invoke(main, ["fake-clevertap", "--account", "no-colon"])
    assert result.exit_code == 2
    assert "ID:PASSCODE" in result.output

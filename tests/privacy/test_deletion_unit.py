"""Deletion requests: parsing RudderStack's regulation shape, the Delete Profile bodies, and the
fake CleverTap's delete endpoint with CleverTap's checks (a real HTTP server on loopback)."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import httpx
import orjson
import pytest

from consumer.contracts import Failure
from consumer.deletion import (
    MALFORMED,
    UNSUPPORTED,
    DeletionRequest,
    build_request,
    parse_request,
    read_ids,
    request_bodies,
)
from tests.support.fake_clevertap import DEFAULT_ACCOUNTS, FakeCleverTapProcess

ACCOUNT = "ACC-ONE"


def test_the_issue_example_parses() -> None:
    value = orjson.dumps(
        {
            "regulationType": "suppress_with_delete",
            "destinationId": "dest-0",
            "users": [{"userId": "u1"}, {"userId": "u2", "cleverTapId": "__9f3a"}, {"email": "x@y.z"}],
        }
    )
    assert parse_request(value) == DeletionRequest(("dest-0",), ("u1", "u2"), ("__9f3a",))


def test_rudderstacks_api_shape_with_destination_ids_and_custom_keys() -> None:
    value = orjson.dumps(
        {
            "regulationType": "suppress_with_delete",
            "destinationIds": ["a", "b", "a"],
            "users": [{"userId": 7, "customKey": "v"}, {"userId": "7"}],
        }
    )
    assert parse_request(value) == DeletionRequest(("a", "b"), ("7",), ())


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", MALFORMED),
        (b"[1]", MALFORMED),
        (b'{"regulationType": "suppress", "destinationId": "d", "users": [{"userId": "u"}]}', UNSUPPORTED),
        (b'{"regulationType": "suppress_with_delete", "users": [{"userId": "u"}]}', MALFORMED),
        (b'{"regulationType": "suppress_with_delete", "destinationId": "d", "users": "u"}', MALFORMED),
        (
            b'{"regulationType": "suppress_with_delete", "destinationId": "d", "users": [{"email": "e"}]}',
            MALFORMED,
        ),
        (b'{"regulationType": "suppress_with_delete", "destinationId": "d", "users": ["u"]}', MALFORMED),
    ],
)
def test_malformed_requests_are_failures_with_a_reason(value: bytes, reason: str) -> None:
    result = parse_request(value)
    assert isinstance(result, Failure)
    assert (result.stage, result.reason) == ("decode", reason)


def test_bodies_use_one_key_each_and_at_most_100_values() -> None:
    request = DeletionRequest(("d",), tuple(f"u{i}" for i in range(250)), ("g1", "g2"))
    bodies = [orjson.loads(b) for b in request_bodies(request)]
    assert [list(b) for b in bodies] == [["identity"], ["identity"], ["identity"], ["guid"]]
    assert [len(next(iter(b.values()))) for b in bodies] == [100, 100, 50, 2]
    assert [u for b in bodies for u in b.get("identity", [])] == list(request.user_ids)


def test_build_request_round_trips() -> None:
    assert parse_request(build_request("d", ["u1"], ["g1"])) == DeletionRequest(("d",), ("u1",), ("g1",))


def test_read_ids_from_a_ticket_file() -> None:
    lines = [
        "u1",
        "",
        "# comment",
        '{"cleverTapId": "g1"}',
        '{"userId": "u2", "cleverTapId": "g2"}',
        "{bad",
        '{"email": "x"}',
    ]
    assert read_ids(lines) == (["u1", "u2"], ["g1", "g2"], [6, 7])


def _delete(fake: FakeCleverTapProcess, body: Any, passcode: str | None = None) -> httpx.Response:
    headers = {
        "X-CleverTap-Account-Id": ACCOUNT,
        "X-CleverTap-Passcode": passcode or DEFAULT_ACCOUNTS[ACCOUNT],
        "Content-Type": "application/json",
    }
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(
        f"{fake.url}/1/delete/profiles.json", content=content, headers=headers, trust_env=False, timeout=30
    )


def test_the_fake_deletes_by_identity_or_guid(fake_clevertap: FakeCleverTapProcess) -> None:
    assert _delete(fake_clevertap, {"identity": ["u1", "u2"]}).json() == {"status": "success"}
    assert _delete(fake_clevertap, {"guid": "g1"}).status_code == 200
    assert fake_clevertap.deletions(ACCOUNT) == [
        {"account": ACCOUNT, "identity": ["u1", "u2"]},
        {"account": ACCOUNT, "guid": ["g1"]},
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"identity": ["u1"], "guid": ["g1"]},
        {},
        {"identity": []},
        {"identity": [1]},
        {"identity": [f"u{i}" for i in range(101)]},
        b"nope",
    ],
)
def test_the_fake_refuses_what_clevertap_refuses(fake_clevertap: FakeCleverTapProcess, body: Any) -> None:
    reply = _delete(fake_clevertap, body)
    assert reply.status_code == 400
    assert reply.json()["status"] == "fail"
    assert fake_clevertap.deletions() == []


def test_the_fake_checks_credentials_and_faults(fake_clevertap: FakeCleverTapProcess) -> None:
    assert _delete(fake_clevertap, {"identity": ["u"]}, passcode="wrong").status_code == 401
    fake_clevertap.set_faults(down=True)
    assert _delete(fake_clevertap, {"identity": ["u"]}).status_code == 503
    assert fake_clevertap.deletions() == []


def test_the_fake_allows_three_deletions_in_flight_per_account(fake_clevertap: FakeCleverTapProcess) -> None:
    # Long enough that all five overlap even on a loaded machine; the barrier sends them together.
    fake_clevertap.set_faults(latency_ms=3000)
    together = threading.Barrier(5)

    def one(i: int) -> httpx.Response:
        together.wait()
        return _delete(fake_clevertap, {"identity": [f"u{i}"]})

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        statuses = sorted(r.status_code for r in pool.map(one, range(5)))
    assert statuses == [200, 200, 200, 429, 429]

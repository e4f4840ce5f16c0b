"""Reading a 200 reply record by record: which request position each `unprocessed` entry means."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from consumer.deliver._reply import BadReplyError, Rejection, read_reply

pytestmark = pytest.mark.timeout(60)  # a hang fails fast; no test here comes close

SENT = [
    orjson.dumps({"type": "event", "identity": f"u{i}", "evtName": "e", "ts": 1_700_000_000})
    for i in range(4)
]


def _reply(*entries: dict[str, Any], status: str = "partial") -> bytes:
    return orjson.dumps(
        {"status": status, "processed": len(SENT) - len(entries), "unprocessed": list(entries)}
    )


def _entry(number: int | None, code: int = 509, record: Any = None) -> dict[str, Any]:
    text = "Event name is mandatory." + (f" Skipped record number : {number}" if number is not None else "")
    entry: dict[str, Any] = {"status": "fail", "code": code, "error": text}
    if record is not None:
        entry["record"] = record
    return entry


def test_record_numbers_are_1_based_and_checked_against_the_echoed_record() -> None:
    reading = read_reply(_reply(_entry(1, record=orjson.loads(SENT[0])), _entry(4)), SENT)
    assert set(reading.rejected) == {0, 3}
    assert reading.rejected[3] == Rejection(509, "Event name is mandatory. Skipped record number : 4")


def test_a_0_based_number_is_recognised_by_its_record() -> None:
    reading = read_reply(_reply(_entry(2, record=orjson.loads(SENT[2]))), SENT)
    assert set(reading.rejected) == {2}


def test_a_record_echoed_as_a_json_string_counts() -> None:
    reading = read_reply(_reply(_entry(3, record=SENT[2].decode())), SENT)
    assert set(reading.rejected) == {2}


def test_an_entry_without_a_number_is_placed_by_its_record() -> None:
    reading = read_reply(_reply(_entry(None, record=orjson.loads(SENT[1]))), SENT)
    assert set(reading.rejected) == {1}


def test_a_normalised_echo_still_matches_on_the_identifying_fields() -> None:
    echo = orjson.loads(SENT[1]) | {"evtData": {}, "added_by_server": True}
    assert set(read_reply(_reply(_entry(2, record=echo)), SENT).rejected) == {1}


def test_a_ts_stamped_by_clevertap_does_not_hide_the_match() -> None:
    sent = [
        orjson.dumps({"type": "profile", "identity": f"u{i}", "profileData": {"Name": "A"}}) for i in range(2)
    ]
    echo = orjson.loads(sent[1]) | {"ts": 1_700_000_123}
    assert set(read_reply(_reply(_entry(2, record=echo)), sent).rejected) == {1}


def test_555_is_transient_and_the_rest_permanent() -> None:
    reading = read_reply(_reply(_entry(1, code=555), _entry(2, code=512)), SENT)
    assert set(reading.transient) == {0}
    assert set(reading.rejected) == {1}
    assert reading.failed() == {0, 1}


@pytest.mark.parametrize(
    "entry",
    [
        _entry(None),  # no number, no record
        _entry(9),  # out of range, nothing to compare
        _entry(2, record={"type": "event", "identity": "someone else"}),  # number and record disagree
        "not an object",
    ],
)
def test_an_entry_that_fits_no_record_is_unmatched(entry: Any) -> None:
    reading = read_reply(orjson.dumps({"status": "partial", "unprocessed": [entry]}), SENT)
    assert reading.rejected == {}
    assert len(reading.unmatched) == 1


def test_success_means_everything_was_taken() -> None:
    assert read_reply(b'{"status":"success","processed":4,"unprocessed":[]}', SENT).failed() == set()
    assert read_reply(b'{"status":"success","processed":4}', SENT).failed() == set()


def test_success_with_unprocessed_entries_is_still_read() -> None:
    assert set(read_reply(_reply(_entry(3), status="success"), SENT).rejected) == {2}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>502</html>",
        b"[]",
        b'{"status":"fail","processed":0,"unprocessed":[]}',
        b'{"unprocessed": 3}',
    ],
)
def test_a_reply_that_does_not_say_what_was_taken_is_bad(body: bytes) -> None:
    with pytest.raises(BadReplyError):
        read_reply(body, SENT)

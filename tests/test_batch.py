"""Batches per account and kind, closed by count, bytes and age, in input order."""

from __future__ import annotations

import orjson
from pydantic import SecretStr

from consumer.batch import Batcher
from consumer.contracts import Target
from consumer.offsets import Entry
from consumer.transform import Record

A = Target("ACC-A", "https://api.clevertap.com/1/upload", SecretStr("pa"))
B = Target("ACC-B", "https://in1.api.clevertap.com/1/upload", SecretStr("pb"))


def _entry(offset: int = 0) -> Entry:
    return Entry("t", 0, offset, None, b"v", [], None)


def _event(i: int) -> Record:
    return Record("event", {"type": "event", "evtName": "e", "evtData": {"i": i}, "identity": f"u{i}"})


def test_batches_close_at_the_record_limit_and_keep_order() -> None:
    batcher = Batcher(max_records=3, max_bytes=1 << 20, linger_s=10)
    closed = []
    for i in range(7):
        closed += batcher.add(A, _event(i), _entry(i), now=0)
    assert [len(b) for b in closed] == [3, 3]
    assert len(batcher) == 1
    bodies = [orjson.loads(b.body()) for b in closed]
    assert [r["evtData"]["i"] for body in bodies for r in body["d"]] == list(range(6))


def test_tokens_batch_separately_at_most_100() -> None:
    batcher = Batcher(max_records=1000, max_bytes=1 << 20, linger_s=10)
    token = Record("token", {"type": "token", "tokenData": {"id": "x", "type": "fcm"}, "objectId": "o"})
    closed = []
    for i in range(150):
        closed += batcher.add(A, token, _entry(i), now=0)
        closed += batcher.add(A, _event(i), _entry(i), now=0)
    assert [(b.kind, len(b)) for b in closed] == [("token", 100)]
    rest = sorted((b.kind, len(b)) for b in batcher.flush())
    assert rest == [("token", 50), ("upload", 150)]


def test_accounts_never_share_a_batch() -> None:
    batcher = Batcher(max_records=1000, max_bytes=1 << 20, linger_s=10)
    batcher.add(A, _event(1), _entry(), now=0)
    batcher.add(B, _event(2), _entry(), now=0)
    batcher.add(Target("ACC-A", A.url, SecretStr("pa")), _event(3), _entry(), now=0)
    batches = {b.target.account_id: b for b in batcher.flush()}
    assert len(batches["ACC-A"]) == 2, "equal targets share one batch"
    assert len(batches["ACC-B"]) == 1


def test_byte_cap_is_exact_and_never_exceeded() -> None:
    one = len(orjson.dumps(_event(1).data))
    envelope = len(b'{"d":[]}')
    cap = envelope + 3 * one + 2  # exactly three records with their commas
    batcher = Batcher(max_records=1000, max_bytes=cap, linger_s=10)
    closed = []
    for i in range(1, 8):
        closed += batcher.add(A, _event(i), _entry(i), now=0)
    for b in closed + batcher.flush():
        assert len(b.body()) == b.size_bytes <= cap
    assert [len(b) for b in closed] == [3, 3]


def test_an_oversized_record_travels_alone() -> None:
    batcher = Batcher(max_records=1000, max_bytes=200, linger_s=10)
    big = Record("event", {"type": "event", "evtName": "e", "evtData": {"blob": "x" * 500}, "identity": "u"})
    assert batcher.add(A, _event(1), _entry(), now=0) == []
    closed = batcher.add(A, big, _entry(), now=0)
    assert [len(b) for b in closed] == [1, 1]
    assert orjson.loads(closed[1].body())["d"][0]["evtData"]["blob"] == "x" * 500


def test_linger_releases_partial_batches() -> None:
    batcher = Batcher(max_records=1000, max_bytes=1 << 20, linger_s=0.2)
    batcher.add(A, _event(1), _entry(), now=10.0)
    batcher.add(B, _event(2), _entry(), now=10.15)
    assert batcher.due(10.1) == []
    assert [b.target for b in batcher.due(10.25)] == [A]
    assert [b.target for b in batcher.due(10.4)] == [B]


def test_discard_drops_only_revoked_partitions() -> None:
    batcher = Batcher(max_records=1000, max_bytes=1 << 20, linger_s=10)
    keep, lose = Entry("t", 0, 0, None, b"", [], None), Entry("t", 1, 0, None, b"", [], None)
    batcher.add(A, _event(1), keep, now=0)
    batcher.add(A, _event(2), lose, now=0)
    batcher.add(B, _event(3), lose, now=0)
    assert batcher.discard({("t", 1)}) == 2
    (batch,) = batcher.flush()
    assert batch.entries == [keep]
    assert len(batch.body()) == batch.size_bytes


def test_target_repr_hides_the_passcode() -> None:
    assert "pa" not in repr(Target("ACC", "https://x/1/upload", SecretStr("pa-secret")))

"""The deliverer against the fake CleverTap in its own process: what gets delivered, what comes
back as a Failure and why, how it backs off, and how it stops."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY, generate_latest

from consumer.batch import Batch
from consumer.contracts import Failure
from consumer.deliver import BatchResult, Deliverer, DeliveryOptions
from tests.support.batches import event, make_batch, target
from tests.support.fake_clevertap import FakeCleverTapProcess

pytestmark = pytest.mark.timeout(60)  # a hang fails fast; no test here comes close

ONE, PASS_ONE = "ACC-ONE", "pass-one"
TWO, PASS_TWO = "ACC-TWO", "pass-two"
FAST = DeliveryOptions(
    timeout_s=5.0, retry_budget_s=30.0, max_attempts=10, backoff_initial_s=0.005, backoff_max_s=0.05
)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"clevertap_consumer_{name}", labels) or 0.0


@pytest.fixture
def deliverers() -> Iterator[Callable[[DeliveryOptions], Deliverer]]:
    """Started deliverers, closed at the end of the test whatever happened."""
    started: list[Deliverer] = []

    def start(options: DeliveryOptions) -> Deliverer:
        deliverer = Deliverer(options)
        deliverer.start()
        started.append(deliverer)
        return deliverer

    yield start
    for deliverer in started:
        deliverer.close(0)


def _collect(deliverer: Deliverer, count: int, limit_s: float = 60.0) -> list[BatchResult]:
    """Drain results until `count` batches' final results arrived (early partial ones are kept
    too); the limit only keeps a broken build from hanging."""
    results: list[BatchResult] = []
    deadline = time.monotonic() + limit_s
    while sum(1 for r in results if not r.partial) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(results)} of {count} results arrived")
        results += deliverer.results()
        time.sleep(0.005)
    return results


def _wait_for(condition: Callable[[], bool], what: str, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def _failures(results: list[BatchResult]) -> list[Failure]:
    return [o for r in results for o in r.outcomes if o is not None]


def _key(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def test_batches_are_delivered_with_clevertaps_headers(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    to = target(fake_clevertap.upload_url, ONE, PASS_ONE)
    batches = [make_batch(to, [event(f"u{b}-{i}") for i in range(50)]) for b in range(3)]
    delivered_before = _sample("records_delivered_total", account=ONE)
    latency_before = _sample("end_to_end_latency_seconds_count")
    deliverer = deliverers(FAST)
    for batch in batches:
        deliverer.submit(batch)
    results = _collect(deliverer, 3)

    assert {id(r.batch) for r in results} == {id(b) for b in batches}
    assert all(r.outcomes == [None] * 50 for r in results)
    assert deliverer.in_flight() == 0
    sent = [orjson.loads(body) for b in batches for body in b.bodies]
    assert sorted(map(_key, fake_clevertap.records(ONE))) == sorted(map(_key, sent))
    for request in fake_clevertap.requests(ONE):
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["x-clevertap-account-id"] == ONE
        assert headers["content-type"] == "application/json; charset=utf-8"
    assert _sample("records_delivered_total", account=ONE) - delivered_before == 150
    assert _sample("end_to_end_latency_seconds_count") - latency_before == 150
    assert _sample("last_successful_delivery_timestamp_seconds") > 0


def test_a_delivered_batch_is_freed_once_its_result_is_dropped(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    """The service raises the garbage collector's thresholds, so whatever a reference cycle holds
    lives until a rare full collection. A batch (its records and their Kafka messages) caught in
    one would make memory grow with every batch delivered."""
    to = target(fake_clevertap.upload_url, ONE, PASS_ONE)
    deliverer = deliverers(FAST)

    def alive() -> bool:
        return any(type(o) is Batch and o.target is to for o in gc.get_objects())

    gc.collect()
    gc.disable()
    try:
        deliverer.submit(make_batch(to, [event(f"u{i}") for i in range(20)]))
        assert _collect(deliverer, 1)[0].outcomes == [None] * 20
        _wait_for(lambda: not alive(), "the batch to be freed without the cycle collector")
    finally:
        gc.enable()


def test_a_partial_reply_fails_exactly_the_rejected_items(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    records = [event(f"u{i}") for i in range(10)]
    records[2] = event("u2", evtName="")  # 509
    records[5] = {"type": "event", "evtName": "no identity"}  # 523
    records[9] = event("u9", ts=1_700_000_000_000)  # 525: milliseconds
    errors_before = _sample("clevertap_record_errors_total", code="523")
    deliverer = deliverers(FAST)
    deliverer.submit(make_batch(target(fake_clevertap.upload_url, ONE, PASS_ONE), records))
    [result] = _collect(deliverer, 1)

    codes = {i: o.code for i, o in enumerate(result.outcomes) if o is not None}
    assert codes == {2: 509, 5: 523, 9: 525}
    for i, outcome in enumerate(result.outcomes):
        if outcome is not None:
            assert outcome.stage == "deliver"
            assert outcome.reason == "clevertap_rejected"
            assert outcome.message.endswith(f"Skipped record number : {i + 1}")
    assert fake_clevertap.records(ONE) == [r for i, r in enumerate(records) if i not in codes]
    assert fake_clevertap.stats()["requests"] == {"200": 1}  # rejections are not retried
    assert _sample("clevertap_record_errors_total", code="523") - errors_before == 1


def test_records_answered_555_are_sent_again_alone(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    fake_clevertap.set_faults(partial_rate=0.3, seed=11)
    records = [event(f"u{i}") for i in range(200)]
    deliverer = deliverers(FAST)
    batch = make_batch(target(fake_clevertap.upload_url, ONE, PASS_ONE), records)
    deliverer.submit(batch)
    results = _collect(deliverer, 1)

    # What the first reply accepted came back at once, before the 555s' retries ended (so its
    # offsets can be committed meanwhile); every item is reported exactly once, all delivered.
    assert results[0].partial
    assert not results[-1].partial
    reported = [entry for r in results for entry in r.batch.entries]
    assert sorted(map(id, reported)) == sorted(map(id, batch.entries))
    assert all(o is None for r in results for o in r.outcomes)
    assert deliverer.in_flight() == 0
    assert sorted(map(_key, fake_clevertap.records(ONE))) == sorted(map(_key, records))
    stats = fake_clevertap.stats()
    assert stats["requests"]["200"] > 1
    # Every record sent was either accepted once or answered 555: nothing was sent twice
    # after being accepted, so only the 555s went out again.
    assert stats["records"]["processed"] == 200
    assert stats["records"]["unprocessed"] == stats["codes"]["555"] > 0


def test_429_lowers_the_limit_and_everything_still_arrives(
    start_fake: Callable[..., FakeCleverTapProcess], deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    fake = start_fake(max_concurrent=3, faults={"latency_ms": 100})
    retries_before = _sample("delivery_retries_total", reason="throttled")
    deliverer = deliverers(FAST)
    to = target(fake.upload_url, ONE, PASS_ONE)
    batches = [make_batch(to, [event(f"u{b}-{i}") for i in range(5)]) for b in range(30)]
    for batch in batches:
        deliverer.submit(batch)
    results = _collect(deliverer, 30)

    assert _failures(results) == []
    assert len(fake.records(ONE)) == 150
    assert fake.stats()["requests"]["429"] >= 1
    assert _sample("delivery_retries_total", reason="throttled") - retries_before >= 1
    assert _sample("concurrency_limit", account=ONE) < 15


def test_the_server_never_sees_more_than_15_requests_of_one_account(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    fake_clevertap.set_faults(latency_ms=50)
    deliverer = deliverers(FAST)
    to = target(fake_clevertap.upload_url, ONE, PASS_ONE)
    for b in range(60):
        deliverer.submit(make_batch(to, [event(f"u{b}")]))
    results = _collect(deliverer, 60)

    assert _failures(results) == []
    stats = fake_clevertap.stats()
    assert 1 < stats["max_concurrency"][ONE] <= 15
    assert "429" not in stats["requests"]


def test_5xx_timeouts_and_resets_are_retried_until_delivered(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    # With seed 15 the fake's first three draws are a timeout, a reset and a 5xx, and the first
    # 12 requests (one per batch, in whatever order they arrive) take the first 12 draws.
    fake_clevertap.set_faults(status_5xx_rate=0.3, reset_rate=0.15, timeout_rate=0.1, seed=15)
    network_before = _sample("delivery_retries_total", reason="connection")
    deliverer = deliverers(replace(FAST, timeout_s=0.5, max_attempts=30))
    to = target(fake_clevertap.upload_url, ONE, PASS_ONE)
    batches = [make_batch(to, [event(f"u{b}-{i}") for i in range(20)]) for b in range(12)]
    for batch in batches:
        deliverer.submit(batch)
    results = _collect(deliverer, 12)

    assert _failures(results) == []
    sent = [orjson.loads(body) for b in batches for body in b.bodies]
    # The fake drops failed requests unprocessed, so every record arrives exactly once.
    assert sorted(map(_key, fake_clevertap.records(ONE))) == sorted(map(_key, sent))
    requests = fake_clevertap.stats()["requests"]
    assert requests.get("timeout", 0) > 0
    assert requests.get("reset", 0) > 0
    assert sum(n for status, n in requests.items() if status.startswith("5")) > 0
    assert _sample("delivery_retries_total", reason="connection") - network_before > 0


def test_attempts_run_out_into_retries_exhausted_failures(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    fake_clevertap.set_faults(account=ONE, down=True)
    deliverer = deliverers(replace(FAST, max_attempts=3))
    deliverer.submit(make_batch(target(fake_clevertap.upload_url, ONE, PASS_ONE), [event("a"), event("b")]))
    [result] = _collect(deliverer, 1)

    assert all(isinstance(o, Failure) for o in result.outcomes)
    for failure in _failures([result]):
        assert failure.reason == "retries_exhausted"
        assert failure.code == 503
        assert "after 3 attempt(s)" in failure.message
        assert "HTTP 503: Service Unavailable" in failure.message
    assert fake_clevertap.stats()["requests"] == {"503": 3}


def test_the_time_budget_ends_retries_before_the_attempts_do(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    fake_clevertap.set_faults(account=ONE, down=True)
    deliverer = deliverers(replace(FAST, max_attempts=10_000, retry_budget_s=0.3))
    deliverer.submit(make_batch(target(fake_clevertap.upload_url, ONE, PASS_ONE), [event("a")]))
    [result] = _collect(deliverer, 1)

    [failure] = _failures([result])
    assert failure.reason == "retries_exhausted"
    assert fake_clevertap.stats()["requests"]["503"] < 10_000


def test_401_is_not_retried_and_says_what_to_check(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    deliverer = deliverers(FAST)
    deliverer.submit(make_batch(target(fake_clevertap.upload_url, ONE, "not-the-passcode"), [event("a")]))
    [result] = _collect(deliverer, 1)

    [failure] = _failures([result])
    assert (failure.stage, failure.reason, failure.code) == ("deliver", "unauthorized", 401)
    assert "bad credentials or wrong region" in failure.message
    assert fake_clevertap.stats()["requests"] == {"401": 1}


def test_other_4xx_are_not_retried(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    to = target(fake_clevertap.upload_url, ONE, PASS_ONE)
    batch = make_batch(to, [event(f"u{i}") for i in range(1000)])
    batch.bodies.append(batch.bodies[0])  # 1001: CleverTap says 400
    batch.entries.append(batch.entries[0])
    batch.stamps.append(batch.stamps[0])
    deliverer = deliverers(FAST)
    deliverer.submit(batch)
    [result] = _collect(deliverer, 1)

    failures = _failures([result])
    assert len(failures) == 1001
    assert {(f.reason, f.code, f.message) for f in failures} == {
        ("http_4xx", 400, f"HTTP 400 from CleverTap for account {ONE}: Malformed request")
    }
    assert fake_clevertap.stats()["requests"] == {"400": 1}


def test_an_account_that_hangs_does_not_hold_up_another(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    fake_clevertap.set_faults(account=ONE, timeout_rate=1)
    deliverer = deliverers(replace(FAST, max_in_flight=2, timeout_s=120))
    stuck = [make_batch(target(fake_clevertap.upload_url, ONE, PASS_ONE), [event(f"a{i}")]) for i in range(6)]
    moving = [
        make_batch(target(fake_clevertap.upload_url, TWO, PASS_TWO), [event(f"b{i}")]) for i in range(3)
    ]
    for batch in stuck + moving:
        deliverer.submit(batch)
    results = _collect(deliverer, 3)

    assert {id(r.batch) for r in results} == {id(b) for b in moving}
    assert _failures(results) == []
    assert len(fake_clevertap.records(TWO)) == 3
    assert fake_clevertap.stats()["accounts"][ONE]["max_concurrency"] == 2  # its limit, not more
    assert deliverer.in_flight() == 6


def test_close_returns_the_batches_a_hung_server_holds(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    fake_clevertap.set_faults(timeout_rate=1)
    deliverer = deliverers(replace(FAST, timeout_s=120))
    batches = [
        make_batch(target(fake_clevertap.upload_url, ONE, PASS_ONE), [event(f"u{i}")]) for i in range(3)
    ]
    for batch in batches:
        deliverer.submit(batch)
    _wait_for(lambda: fake_clevertap.stats()["accounts"].get(ONE, {}).get("in_flight") == 3, "3 requests")

    unfinished = deliverer.close(0.2)

    assert {id(b) for b in unfinished} == {id(b) for b in batches}
    assert deliverer.results() == []
    assert deliverer.in_flight() == 0
    with pytest.raises(RuntimeError):
        deliverer.submit(batches[0])
    # The cancelled requests' connections were closed, so the server let go of them too.
    _wait_for(lambda: fake_clevertap.stats()["accounts"][ONE]["in_flight"] == 0, "the fake to notice")


def test_close_waits_for_batches_that_finish_in_time(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    fake_clevertap.set_faults(latency_ms=200)
    deliverer = deliverers(FAST)
    batches = [
        make_batch(target(fake_clevertap.upload_url, ONE, PASS_ONE), [event(f"u{i}")]) for i in range(2)
    ]
    for batch in batches:
        deliverer.submit(batch)

    assert deliverer.close(30) == []
    results = deliverer.results()
    assert {id(r.batch) for r in results} == {id(b) for b in batches}
    assert _failures(results) == []
    assert deliverer.in_flight() == 0


class _ScriptedCleverTap(ThreadingHTTPServer):
    """A real HTTP server on 127.0.0.1 that answers 200 with scripted bodies, in order, for
    replies the fake never gives (an unreadable body, entries that match no record)."""

    daemon_threads = True

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.received: list[bytes] = []
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/1/upload"


class _ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ScriptedCleverTap

    def do_POST(self) -> None:
        self.server.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        body = self.server.bodies.pop(0)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[Callable[[list[bytes]], _ScriptedCleverTap]]:
    servers: list[_ScriptedCleverTap] = []

    def start(bodies: list[bytes]) -> _ScriptedCleverTap:
        server = _ScriptedCleverTap(bodies)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_unreadable_200_is_retried(
    scripted: Callable[[list[bytes]], _ScriptedCleverTap], deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    server = scripted([b"<html>gateway</html>", b'{"status":"success","processed":2,"unprocessed":[]}'])
    deliverer = deliverers(FAST)
    batch = make_batch(target(server.url, ONE, PASS_ONE), [event("a"), event("b")])
    deliverer.submit(batch)
    [result] = _collect(deliverer, 1)

    assert result.outcomes == [None, None]
    assert server.received == [batch.body(), batch.body()]


def test_a_rejection_that_matches_no_record_dead_letters_the_rest_as_uncertain(
    scripted: Callable[[list[bytes]], _ScriptedCleverTap], deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    reply = {
        "status": "partial",
        "processed": 2,
        "unprocessed": [
            {"status": "fail", "code": 509, "error": "Event name is mandatory. Skipped record number : 2"},
            {"status": "fail", "code": 512, "error": "Invalid event structure", "record": {"other": 1}},
        ],
    }
    server = scripted([orjson.dumps(reply)])
    deliverer = deliverers(FAST)
    deliverer.submit(make_batch(target(server.url, ONE, PASS_ONE), [event("a"), event("b"), event("c")]))
    [result] = _collect(deliverer, 1)

    first, second, third = result.outcomes
    assert second == Failure(
        "deliver", "clevertap_rejected", "Event name is mandatory. Skipped record number : 2", 509
    )
    for uncertain in (first, third):
        assert uncertain is not None
        assert (uncertain.reason, uncertain.code) == ("clevertap_unmatched", 512)
        assert "may or may not have been accepted" in uncertain.message


def test_the_passcode_never_reaches_failures_logs_or_metrics(
    start_fake: Callable[..., FakeCleverTapProcess],
    deliverers: Callable[[DeliveryOptions], Deliverer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "Zq8-SECRET-passcode-4711"
    fake = start_fake(
        accounts={"SECRET-ACC": secret, "DOWN-ACC": secret}, faults={"partial_rate": 0.5, "seed": 3}
    )
    fake.set_faults(account="DOWN-ACC", down=True)
    caplog.set_level(logging.DEBUG)
    deliverer = deliverers(replace(FAST, max_attempts=2))
    records = [event("a"), event("b", evtName=""), event("c")]
    deliverer.submit(make_batch(target(fake.upload_url, "SECRET-ACC", secret), records))
    deliverer.submit(make_batch(target(fake.upload_url, "SECRET-ACC", secret + "-wrong"), records))
    deliverer.submit(make_batch(target(fake.upload_url, "DOWN-ACC", secret), records))
    results = _collect(deliverer, 3)

    failures = _failures(results)
    assert {f.reason for f in failures} >= {"clevertap_rejected", "unauthorized", "retries_exhausted"}
    assert all(secret not in f.message for f in failures)
    warnings = [r for r in caplog.records if r.name == "consumer.deliver" and r.levelno == logging.WARNING]
    assert any("SECRET-ACC" in r.getMessage() and "unauthorized" in r.getMessage() for r in warnings)
    assert secret not in caplog.text
    assert secret.encode() not in generate_latest(REGISTRY)


def test_an_empty_batch_comes_back_at_once(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    deliverer = deliverers(FAST)
    empty = Batch(target(fake_clevertap.upload_url, ONE, PASS_ONE), "upload", 0.0)
    deliverer.submit(empty)
    [result] = _collect(deliverer, 1)
    assert result.outcomes == []
    assert fake_clevertap.stats()["requests"] == {}


def test_the_whole_time_budget_is_used_before_giving_up(
    fake_clevertap: FakeCleverTapProcess, deliverers: Callable[[DeliveryOptions], Deliverer]
) -> None:
    """CleverTap answers 503 throughout: each batch is retried until its budget is spent, the
    last backoff cut to what remains, instead of giving up when a full backoff would cross it."""
    fake_clevertap.set_faults(status_5xx_rate=1.0)
    budget = 3.0
    options = replace(
        FAST, retry_budget_s=budget, max_attempts=10_000, backoff_initial_s=2.0, backoff_max_s=30.0
    )
    deliverer = deliverers(options)
    to = target(fake_clevertap.upload_url, ONE, PASS_ONE)
    started = time.monotonic()
    for b in range(3):
        deliverer.submit(make_batch(to, [event(f"u{b}")]))
    results: list[BatchResult] = []
    ended: list[float] = []
    while len(results) < 3:
        got = deliverer.results()
        results += got
        ended += [time.monotonic()] * len(got)
        time.sleep(0.01)
    spent = [round(t - started, 2) for t in ended]
    assert all(s >= budget - 0.05 for s in spent), spent
    assert all(s <= budget + 2.0 for s in spent), spent
    assert {f.reason for f in _failures(results)} == {"retries_exhausted"}

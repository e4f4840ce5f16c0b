"""401/403 open a breaker for that account only: no more hammering CleverTap, the alert's series
moves, and the destination's choice (dead-letter as `auth_failed`, or hold) decides where the
account's records wait; other accounts keep flowing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY

from consumer.contracts import Target
from consumer.deliver import BatchResult, Deliverer, DeliveryOptions
from consumer.deliver._breaker import AuthBreaker
from tests.support.batches import event, make_batch, target
from tests.support.fake_clevertap import FakeCleverTapProcess

pytestmark = pytest.mark.timeout(60)

ONE, PASS_ONE = "ACC-ONE", "pass-one"
TWO, PASS_TWO = "ACC-TWO", "pass-two"
FAST = DeliveryOptions(
    timeout_s=5.0,
    retry_budget_s=30.0,
    max_attempts=10,
    backoff_initial_s=0.005,
    backoff_max_s=0.05,
    auth_probe_interval_s=0.3,
)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"clevertap_consumer_{name}", labels) or 0.0


@pytest.fixture
def deliverer() -> Iterator[Callable[[DeliveryOptions], Deliverer]]:
    started: list[Deliverer] = []

    def start(options: DeliveryOptions) -> Deliverer:
        d = Deliverer(options)
        d.start()
        started.append(d)
        return d

    yield start
    for d in started:
        d.close(0)


def _collect(d: Deliverer, count: int, limit_s: float = 30.0) -> list[BatchResult]:
    results: list[BatchResult] = []
    deadline = time.monotonic() + limit_s
    while len(results) < count:
        assert time.monotonic() < deadline, f"only {len(results)} of {count} results arrived"
        results += d.results()
        time.sleep(0.005)
    return results


def test_dead_letter_mode_stops_sending_and_other_accounts_flow(
    fake_clevertap: FakeCleverTapProcess, deliverer: Callable[[DeliveryOptions], Deliverer]
) -> None:
    d = deliverer(replace(FAST, auth_probe_interval_s=60.0))
    bad = target(fake_clevertap.upload_url, ONE, "wrong-passcode")
    good = target(fake_clevertap.upload_url, TWO, PASS_TWO)
    responses_401 = _sample("upload_responses_total", account=ONE, code="401")
    d.submit(make_batch(bad, [event("first")]))
    [first] = _collect(d, 1)
    assert [o.reason for o in first.outcomes if o] == ["unauthorized"]
    assert _sample("auth_breaker_open", account=ONE) == 1
    assert _sample("upload_responses_total", account=ONE, code="401") == responses_401 + 1

    for i in range(5):
        d.submit(make_batch(bad, [event(f"later{i}")]))
        d.submit(make_batch(good, [event(f"ok{i}")]))
    results = _collect(d, 10)
    refused = [o for r in results if r.batch.target.account_id == ONE for o in r.outcomes]
    assert refused
    assert all(o is not None and o.reason == "auth_failed" for o in refused)
    assert all(o is None for r in results if r.batch.target.account_id == TWO for o in r.outcomes)
    stats = fake_clevertap.stats()["requests"]
    assert stats.get("401") == 1, "the open breaker sent nothing more"
    assert len(fake_clevertap.records(TWO)) == 5


def test_hold_mode_keeps_records_until_a_probe_succeeds(
    fake_clevertap: FakeCleverTapProcess, deliverer: Callable[[DeliveryOptions], Deliverer]
) -> None:
    d = deliverer(FAST)
    fake_clevertap.set_faults(account=ONE, refuse=True)
    held = Target(
        ONE, fake_clevertap.upload_url, target("", ONE, PASS_ONE).passcode, hold_on_auth_failure=True
    )
    good = target(fake_clevertap.upload_url, TWO, PASS_TWO)
    for i in range(3):
        d.submit(make_batch(held, [event(f"held{i}")]))
    d.submit(make_batch(good, [event("ok")]))
    [ok] = _collect(d, 1)
    assert ok.batch.target.account_id == TWO, "the healthy account does not wait for the sick one"
    time.sleep(1.0)  # a few probe intervals: the held batches stay held, probes get 401
    assert d.results() == []
    assert _sample("auth_breaker_open", account=ONE) == 1
    probes = fake_clevertap.stats()["requests"].get("401", 0)
    assert 1 <= probes <= 6, probes  # about one per interval, never a retry storm

    fake_clevertap.set_faults(account=ONE)  # the passcode is fixed
    results = _collect(d, 3)
    assert all(o is None for r in results for o in r.outcomes)
    assert sorted(r["identity"] for r in fake_clevertap.records(ONE)) == ["held0", "held1", "held2"]
    assert _sample("auth_breaker_open", account=ONE) == 0


def test_held_batches_take_the_credentials_a_reload_brings(
    fake_clevertap: FakeCleverTapProcess, deliverer: Callable[[DeliveryOptions], Deliverer]
) -> None:
    """The fix is in the destinations file, not at CleverTap: batches built with the refused
    passcode are sent again with the reloaded one (else they would probe with it for ever)."""
    d = deliverer(FAST)
    wrong = Target(ONE, fake_clevertap.upload_url, target("", ONE, "wrong-passcode").passcode, True)
    fixed = Target(ONE, fake_clevertap.upload_url, target("", ONE, PASS_ONE).passcode, True)
    for i in range(3):
        d.submit(make_batch(wrong, [event(f"held{i}")]))
    time.sleep(1.0)  # a few probe intervals, each refused
    assert d.results() == []
    assert fake_clevertap.stats()["requests"].get("401", 0) >= 1
    d.replace_targets([fixed, target(fake_clevertap.upload_url, TWO, PASS_TWO)])
    results = _collect(d, 3)
    assert all(o is None for r in results for o in r.outcomes)
    assert sorted(r["identity"] for r in fake_clevertap.records(ONE)) == ["held0", "held1", "held2"]
    assert _sample("auth_breaker_open", account=ONE) == 0


def test_403_opens_the_breaker_too(
    fake_clevertap: FakeCleverTapProcess, deliverer: Callable[[DeliveryOptions], Deliverer]
) -> None:
    d = deliverer(replace(FAST, auth_probe_interval_s=60.0))
    fake_clevertap.set_faults(account=ONE, refuse="forbidden")
    to = target(fake_clevertap.upload_url, ONE, PASS_ONE)
    d.submit(make_batch(to, [event("a")]))
    [first] = _collect(d, 1)
    d.submit(make_batch(to, [event("b")]))
    [second] = _collect(d, 1)
    assert [o.reason for o in first.outcomes if o] == ["forbidden"]
    assert [(o.reason, o.code) for o in second.outcomes if o] == [("auth_failed", 403)]
    assert fake_clevertap.stats()["requests"] == {"403": 1}


def test_an_accounts_upload_and_attribution_credentials_have_their_own_breakers() -> None:
    """A wrong account token (401 from /attribution) is not cured by the passcode working on
    /1/upload: the account's gauge stays open until the attribution breaker itself closes."""
    siblings: list[AuthBreaker] = []
    upload = AuthBreaker("ACC-SIB", 60.0, siblings=siblings)
    attribution = AuthBreaker("ACC-SIB", 60.0, siblings=siblings)
    attribution.trip(401)
    upload.succeeded()
    assert attribution.is_open
    assert not upload.is_open
    assert _sample("auth_breaker_open", account="ACC-SIB") == 1
    attribution.succeeded()
    assert _sample("auth_breaker_open", account="ACC-SIB") == 0

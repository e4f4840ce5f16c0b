"""AIMD per account: halve on 429 once per window, grow by about one per window of successes."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from consumer.deliver._limiter import AdaptiveLimit, Signal

pytestmark = pytest.mark.timeout(60)  # a hang fails fast; no test here comes close


def _gauge(name: str, account: str) -> float | None:
    return REGISTRY.get_sample_value(f"clevertap_consumer_{name}", {"account": account})


def test_a_429_halves_the_limit_once_per_window() -> None:
    async def run() -> None:
        limit = AdaptiveLimit("AIMD-1", 15)
        tokens = [await limit.acquire() for _ in range(15)]
        assert limit.in_flight == 15
        assert _gauge("in_flight_requests", "AIMD-1") == 15
        for token in tokens[:5]:  # a burst of 429s from one window
            limit.release(token, Signal.THROTTLED)
        for token in tokens[5:]:
            limit.release(token, Signal.NEUTRAL)
        assert limit.limit == 7
        token = await limit.acquire()  # sent after the decrease: its 429 is news
        limit.release(token, Signal.THROTTLED)
        assert limit.limit == 3
        assert _gauge("concurrency_limit", "AIMD-1") == 3

    asyncio.run(run())


def test_the_limit_never_drops_below_one_and_grows_back_slowly() -> None:
    async def run() -> None:
        limit = AdaptiveLimit("AIMD-2", 15)
        for _ in range(10):
            limit.release(await limit.acquire(), Signal.THROTTLED)
        assert limit.limit == 1
        grown = []
        for _ in range(40):
            limit.release(await limit.acquire(), Signal.OK)
            grown.append(limit.limit)
        assert grown == sorted(grown)  # never shrinks on success
        assert 1 < grown[-1] < 15  # additive: one per window, not one per success
        for _ in range(2000):
            limit.release(await limit.acquire(), Signal.OK)
        assert limit.limit == 15  # and capped at the maximum

    asyncio.run(run())


def test_neutral_outcomes_leave_the_limit_alone() -> None:
    async def run() -> None:
        limit = AdaptiveLimit("AIMD-3", 4)
        limit.release(await limit.acquire(), Signal.THROTTLED)
        for _ in range(5):
            limit.release(await limit.acquire(), Signal.NEUTRAL)
        assert limit.limit == 2

    asyncio.run(run())


def test_waiters_get_free_slots_in_order_and_cancelled_ones_pass_them_on() -> None:
    async def run() -> None:
        limit = AdaptiveLimit("AIMD-4", 1)
        order: list[str] = []
        first = await limit.acquire()

        async def wait(name: str) -> None:
            token = await limit.acquire()
            order.append(name)
            limit.release(token, Signal.OK)

        a = asyncio.create_task(wait("a"))
        b = asyncio.create_task(wait("b"))
        c = asyncio.create_task(wait("c"))
        await asyncio.sleep(0)
        b.cancel()
        limit.release(first, Signal.OK)
        await asyncio.gather(a, c, b, return_exceptions=True)
        assert order == ["a", "c"]
        assert limit.in_flight == 0

    asyncio.run(run())

"""Per-account adaptive concurrency: how many uploads may be in flight to one CleverTap account.

CleverTap caps concurrent `/1/upload` calls per account (15) and answers 429 above the cap, with
no Retry-After. The cap can also be shared with other senders on the same account, so the limit
is found at run time, AIMD-style like TCP's congestion window: halve on a 429, grow by one per
window of successes, never below 1 nor above the configured maximum. Only one decrease per window:
a burst of 429s from requests sent before the last decrease says nothing new.
"""

from __future__ import annotations

import asyncio
from collections import deque
from enum import Enum

from .. import metrics


class Signal(Enum):
    """What a finished request says about the account's capacity."""

    OK = "ok"  # a reply other than 429: there is room
    THROTTLED = "throttled"  # 429: over the cap
    NEUTRAL = "neutral"  # network error, 5xx, cancelled: says nothing about concurrency


class AdaptiveLimit:
    """An asyncio semaphore whose size follows AIMD. Used only on the delivery loop's thread."""

    def __init__(self, account: str, maximum: int, *, increase: float = 1.0, decrease: float = 0.5) -> None:
        self.account = account
        self.maximum = maximum
        self._increase = increase
        self._decrease = decrease
        self._limit = float(maximum)
        self._in_flight = 0
        self._epoch = 0  # bumped on every decrease
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._limit_gauge = metrics.concurrency_limit.labels(account)
        self._in_flight_gauge = metrics.in_flight_requests.labels(account)
        self._limit_gauge.set(maximum)
        self._in_flight_gauge.set(0)

    @property
    def limit(self) -> int:
        return max(1, int(self._limit))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def acquire(self) -> int:
        """Wait for a slot, first come first served; returns a token for `release`."""
        if self._in_flight >= self.limit or self._waiters:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._in_flight -= 1  # we were handed a slot but will not use it
                    self._wake()
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
        else:
            self._in_flight += 1
        self._in_flight_gauge.set(self._in_flight)
        return self._epoch

    def release(self, token: int, signal: Signal) -> None:
        self._in_flight -= 1
        if signal is Signal.THROTTLED:
            if token == self._epoch:
                self._limit = max(1.0, self._limit * self._decrease)
                self._epoch += 1
        elif signal is Signal.OK and self._limit < self.maximum:
            self._limit = min(float(self.maximum), self._limit + self._increase / self._limit)
        self._limit_gauge.set(self.limit)
        self._in_flight_gauge.set(self._in_flight)
        self._wake()

    def _wake(self) -> None:
        """Hand free slots to waiters in order; a slot is counted as taken when handed over."""
        while self._waiters and self._in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(None)

"""Per-account circuit breaker for wrong credentials (HTTP 401/403).

A wrong passcode or region will not fix itself between retries, and every request is another
refused login at CleverTap. The first 401/403 opens the account's breaker: from then on its
batches are not sent. Once per `probe_interval_s` one batch is let through as a probe; a 2xx
closes the breaker (the operator fixed the passcode and reloaded), another 401/403 keeps it
open. Other accounts never notice. What happens to the refused batches is the destination's
`onAuthFailure` choice, applied by the deliverer: dead-letter them (`auth_failed`, redrivable)
or hold them until the breaker closes.

An account with an `attributionPartner` has two sets of credentials (the passcode for
/1/upload; the account token with it for /attribution), so it has a breaker for each: an upload
that works proves nothing about a wrong token. The account's gauge is open while either is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from enum import Enum

from .. import metrics

log = logging.getLogger("consumer.deliver")

AUTH_STATUSES = (401, 403)


class Admission(Enum):
    SEND = "send"  # breaker closed
    PROBE = "probe"  # breaker open, this batch tests whether the credentials work again
    REFUSE = "refuse"  # breaker open: do not send


class AuthBreaker:
    """One account's breaker. Used only on the delivery loop's thread."""

    def __init__(
        self,
        account: str,
        probe_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        siblings: list[AuthBreaker] | None = None,
    ) -> None:
        self.account = account
        # The account's breakers (this one included), which share its gauge.
        self._siblings = siblings if siblings is not None else []
        self._siblings.append(self)
        self.probe_interval_s = probe_interval_s
        self._clock = clock
        self.is_open = False
        self.status: int | None = None
        self._next_probe = 0.0
        self._probing = False
        self._closed = asyncio.Event()
        self._closed.set()
        self._gauge = metrics.auth_breaker_open.labels(account)
        self._publish()

    def _publish(self) -> None:
        self._gauge.set(int(any(b.is_open for b in self._siblings)))

    def admit(self) -> Admission:
        if not self.is_open:
            return Admission.SEND
        if not self._probing and self._clock() >= self._next_probe:
            self._probing = True
            return Admission.PROBE
        return Admission.REFUSE

    def probe_done(self) -> None:
        """The probe batch finished (whatever its outcome): another may be let through later."""
        self._probing = False

    def trip(self, status: int) -> None:
        """A 401/403 came back: open (or keep open) and wait a full interval before probing."""
        self._next_probe = self._clock() + self.probe_interval_s
        self.status = status
        if not self.is_open:
            self.is_open = True
            self._closed.clear()
            self._publish()
            log.error(
                "account %s answered HTTP %d: breaker open, its uploads stop; one probe every %.0fs "
                "(fix the destination's passcode or region)",
                self.account,
                status,
                self.probe_interval_s,
            )

    def succeeded(self) -> None:
        """CleverTap accepted a request for the account: credentials work."""
        if self.is_open:
            self.is_open = False
            self._closed.set()
            self._publish()
            log.warning("account %s accepted an upload again: breaker closed", self.account)

    async def wait(self) -> None:
        """Until the breaker closes or the next probe is due, whichever comes first."""
        delay = max(0.0, self._next_probe - self._clock())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=delay + 0.01)

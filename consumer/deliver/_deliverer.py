"""The deliver stage: batches in from the poll thread, per-item outcomes back to it.

A dedicated thread runs an asyncio loop with one httpx client; every batch is a task there.
Each account has its own adaptive concurrency limit, so a throttled or failing account only
queues its own batches. Retries (no response, 429, 5xx, an unreadable 200, per-record 555) are
driven by tenacity's `AsyncRetrying` with full-jitter exponential backoff; between attempts only
the records still in doubt are re-sent. What the budget cannot save comes back as `Failure`s
for the DLQ, so nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from .. import metrics
from ..batch import Batch, BatchKind
from ..contracts import Failure, Target
from ._breaker import AUTH_STATUSES, Admission, AuthBreaker
from ._client import NoReply, Reply, get_attribution, post_upload
from ._limiter import AdaptiveLimit, Signal
from ._options import DeliveryOptions
from ._reply import BadReplyError, read_reply

log = logging.getLogger("consumer.deliver")

ClientFactory = Callable[[DeliveryOptions], httpx.AsyncClient]
_STOP_GRACE_S = 5.0  # beyond close()'s timeout, for cancelled requests to unwind


# Every `Failure.reason` this stage hands back (metric labels and the DLQ's `dlq.reason` header).
FAILURE_REASONS = (
    "clevertap_rejected",
    "clevertap_unmatched",
    "retries_exhausted",
    "unauthorized",
    "forbidden",
    "auth_failed",
    "http_3xx",
    "http_4xx",
    "internal_error",
)


# Every `reason` label value of delivery_retries_total this stage emits.
RETRY_REASONS = ("throttled", "server_error", "timeout", "connection", "bad_reply", "record_retryable")


@dataclass(slots=True)
class BatchResult:
    """One outcome per item of `batch`, in order: None when CleverTap accepted the record.

    `partial`: an early report of the records one reply accepted while others of the batch are
    sent again (per-record 555s): they are done now, so their offsets can be committed before
    the retries end (a crash meanwhile would otherwise deliver them again). `batch` then holds
    just those items, and the batch's final result holds only the rest.
    """

    batch: Batch
    outcomes: list[Failure | None]
    partial: bool = False


class _RetryableError(Exception):
    """This attempt failed in a way worth another try. `reason` is the retries metric label."""

    def __init__(self, reason: str, code: int | None, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.code = code
        self.message = message


@dataclass(slots=True)
class _Progress:
    """One batch's delivery so far; `pending` are the item indices still to send."""

    batch: Batch
    outcomes: list[Failure | None]
    pending: list[int]
    attempts: int = 0
    first_sent: float | None = None
    last_status: int | None = None
    delivered: int = 0
    held: bool = False  # refused with 401/403 and kept for after the breaker closes
    # The credentials it is sent with: the batch's own, until a hold ends (see _deliver).
    target: Target = field(init=False)

    def __post_init__(self) -> None:
        self.target = self.batch.target

    failed_reasons: Counter[str] = field(default_factory=Counter)


def _error_text(content: bytes) -> str:
    """CleverTap's own short error text from a non-200 body, if it sent one."""
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError:
        return ""
    error = doc.get("error") if isinstance(doc, dict) else None
    return f": {error[:200]}" if isinstance(error, str) and error else ""


class Deliverer:
    """Sends batches to CleverTap on its own thread; see docs/architecture.md for the contract.

    `submit`, `results`, `in_flight` and `close` are called from the poll thread and never block
    it (except `close`, for at most its timeout plus a short grace).
    """

    def __init__(self, options: DeliveryOptions, client_factory: ClientFactory | None = None) -> None:
        self.options = options
        self._client_factory: ClientFactory = client_factory or DeliveryOptions.http_client
        self._lock = threading.Lock()
        self._state = "new"
        self._accepted = 0
        self._returned = 0
        self._results: deque[BatchResult] = deque()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # One keep-alive pool per account: httpcore walks every connection of a pool (and polls
        # each idle one's socket) whenever a request starts or ends, so a shared pool made each
        # request cost O(all accounts' connections); per account it is at most its 15.
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._spare: httpx.AsyncClient | None = None  # made at start-up, so a bad setup fails there
        self._start_error: BaseException | None = None
        # Owned by the loop thread:
        self._tasks: dict[asyncio.Task[None], Batch] = {}
        self._reported: dict[int, set[int]] = {}  # id(batch) → item indices reported early
        self._limits: dict[str, AdaptiveLimit] = {}
        self._breakers: dict[tuple[str, BatchKind], AuthBreaker] = {}  # (account, credentials)
        self._account_breakers: dict[str, list[AuthBreaker]] = {}
        # The destinations' current targets by account, replaced whole by a reload (another
        # thread; one assignment, so the loop sees the old table or the new one).
        self._current: dict[str, tuple[Target, ...]] = {}

    # -- the poll thread's side ------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"deliverer already {self._state}")
            self._state = "starting"
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run_loop, args=(ready,), name="deliver", daemon=True)
        self._thread.start()
        ready.wait()
        if self._start_error is not None:
            with self._lock:
                self._state = "closed"
            raise RuntimeError("could not start the deliverer") from self._start_error
        with self._lock:
            self._state = "running"

    def replace_targets(self, targets: Iterable[Target]) -> None:
        """The reloaded destinations' targets. A batch held for an account's open breaker
        (`onAuthFailure: hold`) is built with the credentials that were refused; when it is sent
        again it takes the account's current ones, so fixing the passcode (or region) and
        reloading releases the held records instead of probing with the old passcode for ever."""
        by_account: dict[str, list[Target]] = {}
        for t in dict.fromkeys(targets):
            by_account.setdefault(t.account_id, []).append(t)
        self._current = {account: tuple(ts) for account, ts in by_account.items()}

    def _refreshed(self, target: Target) -> Target:
        """`target`'s account as the destinations file has it now: the target with the same
        URL, else the account's only target, else `target` itself (ambiguous or removed)."""
        current = self._current.get(target.account_id, ())
        same_url = [t for t in current if t.url == target.url and t.attribution_url == target.attribution_url]
        if same_url:
            return same_url[0]
        return current[0] if len(current) == 1 else target

    def submit(self, batch: Batch) -> None:
        """Hand a batch over; its result comes out of `results()` later. RuntimeError before
        `start()` or once `close()` began: the caller keeps such a batch uncommitted."""
        with self._lock:
            if self._state != "running" or self._loop is None:
                raise RuntimeError(f"deliverer is {self._state}, not accepting batches")
            self._accepted += 1
            # Inside the lock: a submit that got in before close() is queued on the loop
            # before close()'s shutdown, so close() sees its task.
            self._loop.call_soon_threadsafe(self._spawn, batch)

    def results(self) -> list[BatchResult]:
        """Results finished since the last call; never blocks."""
        out: list[BatchResult] = []
        while True:
            try:
                out.append(self._results.popleft())
            except IndexError:
                break
        finals = sum(1 for r in out if not r.partial)
        if finals:
            with self._lock:
                self._returned += finals
        return out

    def in_flight(self) -> int:
        """Batches submitted whose result has not been taken by `results()` (or `close()`)."""
        with self._lock:
            return self._accepted - self._returned

    def close(self, timeout: float) -> list[Batch]:
        """Stop accepting; wait up to `timeout` for batches in flight (their results still come
        out of `results()`); cancel the rest and return them. Those are not failures: their
        offsets are simply not committed, and Kafka delivers them again."""
        with self._lock:
            if self._state != "running":
                self._state = "closed"
                return []
            self._state = "closing"
        assert self._loop is not None
        assert self._thread is not None
        future = asyncio.run_coroutine_threadsafe(self._shutdown(timeout), self._loop)
        try:
            unfinished = future.result(timeout + _STOP_GRACE_S)
        except concurrent.futures.TimeoutError:
            log.error("delivery loop did not stop within %.1fs of its deadline", _STOP_GRACE_S)
            unfinished = list(self._tasks.values())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_STOP_GRACE_S)
        with self._lock:
            self._returned += len(unfinished)
            self._state = "closed"
        return unfinished

    # -- the loop thread -------------------------------------------------------------------

    def _run_loop(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._spare = self._client_factory(self.options)
        except BaseException as exc:
            self._start_error = exc
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _spawn(self, batch: Batch) -> None:
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._tasks[task] = batch
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    async def _shutdown(self, timeout: float) -> list[Batch]:
        batches = dict(self._tasks)
        unfinished: list[Batch] = []
        if batches:
            _, pending = await asyncio.wait(batches, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            unfinished = [batches[t] for t in pending if t.cancelled()]
        for batch in unfinished:
            metrics.batches_sent.labels(batch.target.account_id, "unfinished").inc()
        if unfinished:
            log.warning(
                "closing: %d batch(es) still in flight were cancelled, not committed", len(unfinished)
            )
        clients = [*self._clients.values(), *([self._spare] if self._spare is not None else [])]
        self._clients.clear()
        self._spare = None
        for client in clients:
            await client.aclose()
        return unfinished

    async def _run(self, batch: Batch) -> None:
        try:
            outcomes = await self._deliver(batch)
        except Exception:
            log.exception("unexpected error delivering a batch for account %s", batch.target.account_id)
            failure = Failure("deliver", "internal_error", "unexpected error in the deliverer (see its log)")
            outcomes = [failure] * len(batch)
        reported = self._reported.pop(id(batch), None)
        if reported:  # the final result holds only what was not reported early
            rest = [i for i in range(len(batch)) if i not in reported]
            batch = batch.subset(rest)
            outcomes = [outcomes[i] for i in rest]
        self._results.append(BatchResult(batch, outcomes))

    def _limit_for(self, account: str) -> AdaptiveLimit:
        limit = self._limits.get(account)
        if limit is None:
            o = self.options
            limit = AdaptiveLimit(
                account, o.max_in_flight, increase=o.aimd_increase, decrease=o.aimd_decrease
            )
            self._limits[account] = limit
        return limit

    def _breaker_for(self, account: str, kind: BatchKind) -> AuthBreaker:
        """The breaker of the credentials `kind` is sent with: /attribution's (token and
        passcode) apart from /1/upload's (the passcode; token uploads use it too)."""
        credentials: BatchKind = "attribution" if kind == "attribution" else "upload"
        key = (account, credentials)
        breaker = self._breakers.get(key)
        if breaker is None:
            siblings = self._account_breakers.setdefault(account, [])
            breaker = self._breakers[key] = AuthBreaker(
                account, self.options.auth_probe_interval_s, siblings=siblings
            )
        return breaker

    # -- one batch -------------------------------------------------------------------------

    async def _deliver(self, batch: Batch) -> list[Failure | None]:
        progress = _Progress(batch, [None] * len(batch), list(range(len(batch))))
        if not batch.bodies:
            return progress.outcomes
        limit = self._limit_for(batch.target.account_id)
        breaker = self._breaker_for(batch.target.account_id, batch.kind)
        was_held = False
        while True:
            admission = breaker.admit()
            if admission is Admission.REFUSE:
                if not progress.target.hold_on_auth_failure:
                    self._refuse(progress, breaker)
                    break
                await breaker.wait()
                was_held = True  # built before the breaker opened: maybe before a fix, too
                continue
            if was_held:
                progress.target = self._refreshed(progress.target)  # a reload may have fixed it
            try:
                await self._send(progress, limit, breaker)
            finally:
                if admission is Admission.PROBE:
                    breaker.probe_done()
            if not progress.held:
                break
            # Held: the time waiting for the breaker is not spent from the retry budget.
            progress.held, progress.attempts, progress.first_sent = False, 0, None
            was_held = True
        self._finish(progress)
        outcomes = progress.outcomes
        del progress  # see _send: nothing may keep the batch alive after its result is out
        return outcomes

    def _refuse(self, progress: _Progress, breaker: AuthBreaker) -> None:
        account = progress.batch.target.account_id
        message = (
            f"not sent: account {account}'s breaker is open after HTTP {breaker.status} (bad passcode or "
            "region); redrive from the DLQ once the destination is fixed"
        )
        for i in progress.pending:
            self._fail(progress, i, "auth_failed", message, breaker.status)
        progress.pending = []

    async def _send(self, progress: _Progress, limit: AdaptiveLimit, breaker: AuthBreaker) -> None:
        o = self.options
        backoff = wait_random_exponential(multiplier=o.backoff_initial_s, max=o.backoff_max_s)
        retrying = AsyncRetrying(
            stop=lambda state: self._out_of_budget(progress, state),  # noqa: F821 (del below)
            wait=lambda state: self._backoff(progress, state, backoff),  # noqa: F821
            retry=retry_if_exception_type(_RetryableError),
            before_sleep=lambda state: self._before_retry(progress, state),  # noqa: F821
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._attempt(progress, limit, breaker)
        except _RetryableError as exc:
            self._give_up(progress, exc)
        # tenacity's retry objects form a reference cycle that includes the two lambdas, so the
        # cycle would keep this batch (a thousand records and their Kafka messages) alive until
        # the next full garbage collection, which the service's GC tuning makes rare: memory
        # then grows with every batch. Emptying the closure cell unhooks the batch now.
        del progress

    def _remaining(self, progress: _Progress) -> float:
        """Seconds left of the batch's time budget (all of it before the first request)."""
        if progress.first_sent is None:
            return self.options.retry_budget_s
        return self.options.retry_budget_s - (time.monotonic() - progress.first_sent)

    def _backoff(self, progress: _Progress, state: RetryCallState, backoff: wait_random_exponential) -> float:
        """The jittered backoff, cut to what remains of the budget: the last retry starts when
        the budget ends at the latest, instead of not at all (which gave up a 10 s budget after
        2-4 s whenever the next full backoff would have crossed it)."""
        return max(0.0, min(backoff(state), self._remaining(progress)))

    def _out_of_budget(self, progress: _Progress, _state: RetryCallState) -> bool:
        if progress.attempts >= self.options.max_attempts:
            return True
        return self._remaining(progress) <= 0

    async def _attempt(self, progress: _Progress, limit: AdaptiveLimit, breaker: AuthBreaker) -> None:
        bodies, pending = progress.batch.bodies, progress.pending
        sent = bodies if len(pending) == len(bodies) else [bodies[i] for i in pending]
        body = b'{"d":[' + b",".join(sent) + b"]}"
        token = await limit.acquire()
        signal = Signal.NEUTRAL
        try:
            if progress.first_sent is None:
                progress.first_sent = time.monotonic()
            progress.attempts += 1
            metrics.batch_records.observe(len(sent))
            metrics.batch_bytes.observe(len(body))
            if progress.batch.kind == "attribution":
                params = orjson.loads(sent[0])  # a batch of one (batch.Batcher)
                reply = await get_attribution(
                    self._client_for(progress.target.account_id), progress.target, params
                )
            else:
                reply = await post_upload(self._client_for(progress.target.account_id), progress.target, body)
            if isinstance(reply, Reply):
                progress.last_status = reply.status
                if reply.status == 429:
                    signal = Signal.THROTTLED
                elif 200 <= reply.status < 300:
                    signal = Signal.OK
        finally:
            limit.release(token, signal)

        if isinstance(reply, NoReply):
            progress.last_status = None
            reason = "timeout" if reply.error == "timeout" else "connection"
            raise _RetryableError(reason, None, f"no response ({reply.error}): {reply.detail}")
        status = reply.status
        if status == 429:
            raise _RetryableError("throttled", 429, "HTTP 429: too many concurrent requests")
        if status >= 500:
            raise _RetryableError("server_error", status, f"HTTP {status}{_error_text(reply.content)}")
        if 200 <= status < 300:
            breaker.succeeded()
            if progress.batch.kind == "attribution":
                self._delivered(progress, progress.pending)  # a 200 is the whole answer (§7.2)
                progress.pending = []
            else:
                self._read(progress, reply, sent)
        elif progress.batch.kind == "attribution" and status != 401:
            self._partner_refused(progress, status, reply.content)
        elif status in AUTH_STATUSES:
            breaker.trip(status)
            if (progress.target).hold_on_auth_failure:
                progress.held = True  # pending stays: sent again once the breaker closes
            else:
                self._reject_all(progress, status, reply.content)
        else:
            self._reject_all(progress, status, reply.content)

    def _client_for(self, account: str) -> httpx.AsyncClient:
        client = self._clients.get(account)
        if client is None:
            client, self._spare = self._spare, None
            if client is None:
                client = self._client_factory(self.options)
            self._clients[account] = client
        return client

    def _read(self, progress: _Progress, reply: Reply, sent: list[bytes]) -> None:
        try:
            reading = read_reply(reply.content, sent)
        except BadReplyError as exc:
            raise _RetryableError(
                "bad_reply", reply.status, f"HTTP {reply.status} with an unreadable body: {exc}"
            ) from None
        pending = progress.pending
        for rejection in [*reading.rejected.values(), *reading.transient.values(), *reading.unmatched]:
            metrics.clevertap_record_errors.labels(str(rejection.code)).inc()
        for i, rejection in reading.rejected.items():
            self._fail(progress, pending[i], "clevertap_rejected", rejection.message, rejection.code)
        in_doubt = reading.failed()
        if reading.unmatched:
            # We cannot tell which record CleverTap skipped, so none of the rest is known to be
            # delivered: dead-letter them all (a duplicate beats a silent loss), saying so.
            first = reading.unmatched[0]
            message = (
                f"CleverTap skipped {len(reading.unmatched)} record(s) of this request that match no record "
                f"sent, so this record may or may not have been accepted; first: {first.message}"
            )
            for i in range(len(pending)):
                if i not in in_doubt:
                    self._fail(progress, pending[i], "clevertap_unmatched", message, first.code)
        else:
            delivered = (
                [pending[i] for i in range(len(pending)) if i not in in_doubt] if in_doubt else pending
            )
            self._delivered(progress, delivered)
            if reading.transient:
                self._report_early(progress, delivered)
        progress.pending = [pending[i] for i in sorted(reading.transient)]
        if progress.pending:
            first = next(iter(reading.transient.values()))
            raise _RetryableError(
                "record_retryable", first.code, f"CleverTap code {first.code}: {first.message}"
            )

    def _report_early(self, progress: _Progress, indices: list[int]) -> None:
        """Hand the records this reply accepted to the poll thread now, while the rest of the
        batch waits for its retries (see BatchResult.partial)."""
        if not indices:
            return
        batch = progress.batch
        self._reported.setdefault(id(batch), set()).update(indices)
        early = batch.subset(indices)
        self._results.append(BatchResult(early, [None] * len(indices), partial=True))

    def _delivered(self, progress: _Progress, indices: list[int]) -> None:
        if not indices:
            return
        progress.delivered += len(indices)
        metrics.records_delivered.labels(progress.batch.target.account_id).inc(len(indices))
        now = time.time()
        metrics.last_delivery_timestamp.set(now)
        stamps = progress.batch.stamps
        chosen = stamps if len(indices) == len(stamps) else [stamps[i] for i in indices]
        metrics.observe_ages(metrics.end_to_end_latency, now * 1000, chosen)

    def _fail(self, progress: _Progress, index: int, reason: str, message: str, code: int | None) -> None:
        progress.outcomes[index] = Failure("deliver", reason, message, code)
        progress.failed_reasons[reason] += 1

    def _reject_all(self, progress: _Progress, status: int, content: bytes) -> None:
        account = progress.batch.target.account_id
        text = _error_text(content)
        if status == 401:
            reason = "unauthorized"
            message = (
                f"HTTP 401 from CleverTap for account {account}{text}: bad credentials or wrong region "
                "(check the destination's passcode and region)"
            )
        else:
            reason = "forbidden" if status == 403 else f"http_{status // 100}xx"
            message = f"HTTP {status} from CleverTap for account {account}{text}"
        log.warning(
            "upload to account %s refused: status=%s attempt=%d reason=%s (not retried)",
            account,
            status,
            progress.attempts,
            reason,
        )
        for i in progress.pending:
            self._fail(progress, i, reason, message, status)
        progress.pending = []

    def _partner_refused(self, progress: _Progress, status: int, content: bytes) -> None:
        """The partner endpoint refused the install (400: a missing field or a partner that is
        not whitelisted; 403): never retried (§7.2), dead-lettered with CleverTap's code."""
        account = progress.batch.target.account_id
        message = f"HTTP {status} from CleverTap's /attribution for account {account}{_error_text(content)}"
        log.warning("attribution for account %s refused: status=%s (not retried)", account, status)
        for i in progress.pending:
            self._fail(progress, i, "clevertap_rejected", message, status)
        progress.pending = []

    def _before_retry(self, progress: _Progress, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = exc.reason if isinstance(exc, _RetryableError) else "unknown"
        metrics.retries.labels(reason).inc()
        log.warning(
            "upload to account %s failed: status=%s attempt=%d reason=%s; retrying %d record(s) in %.2fs",
            progress.batch.target.account_id,
            progress.last_status if progress.last_status is not None else "none",
            progress.attempts,
            reason,
            len(progress.pending),
            state.upcoming_sleep,
        )

    def _give_up(self, progress: _Progress, exc: _RetryableError) -> None:
        elapsed = time.monotonic() - (progress.first_sent or time.monotonic())
        message = f"gave up after {progress.attempts} attempt(s) in {elapsed:.1f}s; last error: {exc.message}"
        log.warning(
            "upload to account %s failed: status=%s attempt=%d reason=%s; retry budget exhausted, "
            "%d record(s) to the DLQ",
            progress.batch.target.account_id,
            progress.last_status if progress.last_status is not None else "none",
            progress.attempts,
            exc.reason,
            len(progress.pending),
        )
        for i in progress.pending:
            self._fail(progress, i, "retries_exhausted", message, exc.code)
        progress.pending = []

    def _finish(self, progress: _Progress) -> None:
        account = progress.batch.target.account_id
        failed = sum(progress.failed_reasons.values())
        total = len(progress.outcomes)
        outcome = "delivered" if not failed else ("failed" if failed == total else "partial")
        metrics.batches_sent.labels(account, outcome).inc()
        if failed:
            reasons = ", ".join(f"{r}={n}" for r, n in sorted(progress.failed_reasons.items()))
            log.warning(
                "batch for account %s: %d of %d record(s) not delivered (%s) after %d attempt(s)",
                account,
                failed,
                total,
                reasons,
                progress.attempts,
            )

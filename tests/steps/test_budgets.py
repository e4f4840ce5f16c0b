"""Per-account in-flight budgets (issue 13): a full account pauses consumption briefly, then has
its messages deferred (placeholders, re-read later) while other accounts in the same partitions
flow; the re-read skips what was handled, keeps each account's order, and everything commits.
The chain runs with fakes at its ends (tests/steps/test_steps.py); the integration suite proves
the same against Kafka and the fake CleverTap (tests/integration/test_isolation.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from consumer.batch import Batch
from consumer.deliver import BatchResult
from consumer.destinations import parse_destinations
from consumer.offsets import SEEN, Entry
from consumer.route import Router
from consumer.steps import DEFER_AFTER_S, MessageRejected
from tests.steps.test_steps import Chain as StepsChain
from tests.steps.test_steps import FakeDeliverer, FakeMessage

TP = ("events", 0)
SICK, HEALTHY = "ACC-SICK", "ACC-HEALTHY"


def event(offset: int, dest: str) -> bytes:
    return orjson.dumps(
        {
            "type": "track",
            "event": "Step",
            "userId": f"u{offset}",
            "messageId": f"m{offset}",
            "timestamp": "2026-12-01T10:00:00Z",
            "destinationId": dest,
        }
    )


def interleaved(first: int, n: int, partition: int = 0) -> list[Any]:
    """Even offsets for the sick account, odd ones for the healthy one, in one partition."""
    return [
        FakeMessage("events", partition, o, event(o, "sick" if o % 2 == 0 else "healthy"))
        for o in range(first, first + n)
    ]


class SendingDeliverer(FakeDeliverer):
    """Records which offsets were sent per account, in order."""

    def __init__(self, log: list[str]) -> None:
        super().__init__(log)
        self.sent: dict[str, list[int]] = {SICK: [], HEALTHY: []}

    def submit(self, batch: Batch) -> None:
        super().submit(batch)
        self.sent[batch.target.account_id] += [e.offset for e in batch.entries]


class Chain(StepsChain):
    """Two accounts, a small budget each, one record per batch (every record is sent at once)."""

    deliverer: SendingDeliverer

    def __init__(self, per_account: int = 3, max_tracked: int = 1000, max_in_flight: int = 1000) -> None:
        routes = Router.from_destinations(
            parse_destinations(
                {
                    "destinations": [
                        {"id": "sick", "accountId": SICK, "passcode": "p-sick"},
                        {"id": "healthy", "accountId": HEALTHY, "passcode": "p-healthy"},
                    ]
                }
            ),
            None,
        )
        super().__init__(
            max_in_flight,
            routes=routes,
            deliverer=SendingDeliverer,
            batch_records=1,
            per_account=per_account,
            max_tracked=max_tracked,
        )
        self.sent = self.deliverer.sent
        self.carried: list[Any] | None = None

    def answer(self, account: str) -> None:
        """CleverTap accepts every batch of `account` sent so far; the others stay in flight."""
        self.process.flush()  # nothing lingers in an open batch
        keep = []
        for batch in self.deliverer.submitted:
            if batch.target.account_id == account:
                self.deliverer.answers.append(BatchResult(batch, [None] * len(batch)))
            else:
                keep.append(batch)
        self.deliverer.submitted = keep

    def offer(self, messages: list[Any] | None = None) -> None:
        """What the pipeline does: offer the carried part first; keep what is not taken."""
        batch = (self.carried or []) + (messages or [])
        self.carried = None
        try:
            self.process.submit(batch)
        except MessageRejected as exc:
            self.carried = batch if exc.rest is None else exc.rest
        self.process.flush()  # nothing lingers in an open batch

    def turn(self, dt: float = 0.1) -> None:
        self.now += dt
        self.process.poll()

    def committed(self) -> int:
        self.now += 1
        self.commit.poll()
        return self.commits.points[TP][0]


def offsets(messages: list[Any] | None) -> list[int] | None:
    return None if messages is None else [m.offset() for m in messages]


def sick_account_deferring(c: Chain) -> None:
    """Offsets 0-5: the sick account fills its budget of 3 at offset 4 and never drains; the
    rest of the batch waits (a pause, like the overall bound) until, DEFER_AFTER_S later, the
    sick account is deferring and the healthy one's offset 5 is taken."""
    c.offer(interleaved(0, 6))
    assert offsets(c.carried) == [5]
    assert c.sent == {SICK: [0, 2, 4], HEALTHY: [1, 3]}
    c.answer(HEALTHY)
    c.turn()
    c.offer()
    assert offsets(c.carried) == [5]  # still full and maybe about to drain: the pause goes on
    c.turn(DEFER_AFTER_S)
    assert c.process.budgets[SICK].deferring
    c.offer()
    assert c.carried is None
    c.answer(HEALTHY)
    c.turn()


def test_a_full_account_is_deferred_while_the_other_account_flows_in_the_same_partition() -> None:
    c = Chain()
    sick_account_deferring(c)
    for first in (6, 10, 14, 18):
        c.offer(interleaved(first, 4))
        assert c.carried is None
        c.answer(HEALTHY)
        c.turn()
    assert c.sent[HEALTHY] == list(range(1, 22, 2))  # every healthy message, once, in order
    assert c.sent[SICK] == [0, 2, 4]  # the budget's worth, still in flight
    tracker = c.ledger.tracker
    assert tracker.deferred_records == 8
    assert tracker.in_flight_records == 3  # placeholders are not in flight
    assert c.process.budgets[SICK].deferred() == 8
    # The watermark waits for the sick account's first message; what is done above is recorded.
    assert c.committed() == 0
    assert c.commits.points[TP][1]  # an offset map of the healthy offsets done above it
    assert c.holds.rewinds == []  # nothing re-read while the account has no room


def test_deferred_and_finished_messages_keep_no_payload() -> None:
    c = Chain()
    sick_account_deferring(c)
    c.offer(interleaved(6, 2))
    placeholder = c.ledger.tracker.seen(TP, 6)
    assert isinstance(placeholder, Entry)
    assert placeholder.deferred
    assert placeholder.value is None
    assert placeholder.headers == []
    assert c.ledger.tracker.seen(TP, 5) == SEEN  # done, and read before: a re-read skips it


def test_room_again_rewinds_the_partition_and_the_reread_processes_only_the_deferred() -> None:
    c = Chain()
    sick_account_deferring(c)
    c.offer(interleaved(6, 4))  # sick 6, 8 deferred; healthy 7, 9 sent
    c.answer(HEALTHY)
    c.turn()
    c.answer(SICK)  # the sick account recovers: 0, 2, 4 accepted
    c.turn()
    assert c.holds.rewinds == [(TP, 6)]  # sought back to its lowest deferred offset
    c.offer(interleaved(6, 4))  # the re-read: the same offsets again
    assert c.sent[SICK] == [0, 2, 4, 6, 8]
    assert c.sent[HEALTHY] == [1, 3, 5, 7, 9]  # nothing of the healthy account sent twice
    c.answer(SICK)
    c.answer(HEALTHY)
    c.turn()
    assert c.committed() == 10
    assert c.ledger.tracker.pending() == 0
    assert c.ledger.tracker.deferred_records == 0
    assert c.ledger.stats["delivered"] == 10


def test_a_later_message_of_a_deferred_account_never_overtakes_an_earlier_one() -> None:
    c = Chain()
    sick_account_deferring(c)
    c.offer(interleaved(6, 2))  # sick 6 deferred
    c.answer(SICK)
    c.turn()  # room again: a rewind to 6 is asked for, but the re-read has not arrived yet
    c.offer(interleaved(8, 2))  # newer messages first: sick 8 must wait behind 6
    assert c.sent[SICK] == [0, 2, 4]
    assert c.ledger.tracker.deferred_records == 2
    c.offer(interleaved(6, 4))  # the re-read arrives
    assert c.sent[SICK] == [0, 2, 4, 6, 8]
    c.answer(SICK)
    c.answer(HEALTHY)
    c.turn()
    assert c.committed() == 10


def test_an_account_that_fills_again_during_the_reread_is_read_again_later() -> None:
    c = Chain()
    sick_account_deferring(c)
    c.offer(interleaved(6, 10))  # sick 6 … 14 deferred
    c.answer(HEALTHY)
    c.answer(SICK)
    c.turn()
    assert c.holds.rewinds == [(TP, 6)]
    # The re-read: 6, 8, 10 fill the budget again (it was slow to drain, so it defers at once)
    # and 12, 14 stay deferred.
    c.offer(interleaved(6, 10))
    assert c.carried is None
    assert c.sent[SICK] == [0, 2, 4, 6, 8, 10]
    assert c.ledger.tracker.deferred_records == 2
    c.answer(SICK)
    c.turn()
    assert c.holds.rewinds[-1] == (TP, 12)
    c.offer(interleaved(12, 4))
    assert c.sent[SICK] == [0, 2, 4, 6, 8, 10, 12, 14]
    c.answer(SICK)
    c.answer(HEALTHY)
    c.turn()
    assert c.committed() == 16


def test_a_busy_healthy_account_pauses_consumption_instead_of_deferring() -> None:
    c = Chain()
    healthy_only = [FakeMessage("events", 0, o, event(o, "healthy")) for o in range(6)]
    c.offer(healthy_only)
    assert offsets(c.carried) == [3, 4, 5]  # the rest of the batch waits, nothing deferred
    c.answer(HEALTHY)  # it drains within DEFER_AFTER_S
    c.turn()
    c.offer()
    assert c.ledger.tracker.deferred_records == 0
    assert c.sent[HEALTHY] == [0, 1, 2, 3, 4, 5]
    assert not c.process.budgets[HEALTHY].slow


def test_the_overall_bound_still_resumes_while_a_deferring_account_holds_its_budget() -> None:
    c = Chain(per_account=3, max_in_flight=5)
    sick_account_deferring(c)  # the sick account holds 3 of the 5
    c.offer(interleaved(6, 4))  # healthy 7, 9 in flight: 5 of 5
    with pytest.raises(MessageRejected):
        c.process.submit(interleaved(10, 2))
    c.answer(HEALTHY)
    c.turn()
    c.offer(interleaved(10, 2))  # the healthy part drained: consumption goes on
    assert c.sent[HEALTHY][-1] == 11


def test_a_partition_with_too_many_tracked_offsets_is_held_until_the_deferred_can_be_reread() -> None:
    c = Chain(max_tracked=10)
    sick_account_deferring(c)
    c.offer(interleaved(6, 6))
    c.answer(HEALTHY)
    c.turn()
    assert c.ledger.tracker.tracked(TP) == 12
    assert c.holds.held == {TP: (12, float("inf"))}  # paused where reading stopped
    c.answer(SICK)
    c.turn()  # room again: the hold ends so the partition can be read again from 6
    assert TP not in c.holds.held
    assert c.holds.rewinds == [(TP, 6)]


def test_revocation_forgets_placeholders_and_budgets_do_not_leak() -> None:
    c = Chain()
    sick_account_deferring(c)
    c.offer(interleaved(6, 4))
    c.answer(HEALTHY)
    c.turn()
    tracker = c.ledger.tracker
    assert tracker.pending({TP}, deferred=False) == 3  # what a revocation waits for
    released = tracker.drop({TP})
    c.process.forget({TP})
    assert released == 3 + 2  # in flight and deferred: the next owner reads them
    assert tracker.deferred_records == 0
    assert tracker.in_flight_records == 0
    assert c.process.budgets[SICK].records == 0
    assert c.process.budgets[SICK].waiting == {}


def test_a_new_deferral_after_a_finished_reread_is_read_again_at_once() -> None:
    c = Chain()
    sick_account_deferring(c)
    c.offer(interleaved(6, 2))  # sick 6 deferred
    c.answer(HEALTHY)
    c.answer(SICK)
    c.turn()
    assert c.holds.rewinds == [(TP, 6)]
    c.offer(interleaved(6, 2))  # the re-read, complete: 6 sent, 7 skipped
    c.offer(interleaved(8, 6))  # sick 8, 10 fill it again (slow last time: deferring at once), 12 deferred
    assert c.sent[SICK] == [0, 2, 4, 6, 8, 10]
    c.answer(HEALTHY)
    c.answer(SICK)
    c.turn()  # well within REWIND_RETRY_S of the last rewind, which is done with
    assert c.holds.rewinds == [(TP, 6), (TP, 12)]
    c.offer(interleaved(12, 2))
    assert c.sent[SICK][-1] == 12

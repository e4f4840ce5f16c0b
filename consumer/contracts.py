"""The types that cross stages, in one place.

Every stage (source, codec, route, transform, batch, deliver, offsets, dlq) imports the values it
receives from here, never from the stage that makes them: data flows forward, no stage reaches
back for a type, and there is no import cycle (there was one between `dlq` and `offsets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pydantic import SecretStr

Headers = list[tuple[str, bytes | None]]
#: The headers of a message that has none, or no longer needs them: shared, so never mutated.
NO_HEADERS: Headers = []
TopicPartitionKey = tuple[str, int]
#: Next offset to read, and the offset map (consumer.offset_map) of done offsets above it.
CommitPoint = tuple[int, str]

Stage = Literal["decode", "route", "transform", "deliver"]


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one message (or one record made from it) was not delivered.

    `reason` is a short label from a fixed set (metric label, `dlq.reason` header); `message` is
    the human detail and must never contain a secret or the payload; `code` is CleverTap's
    per-record error code or the HTTP status when there is one.
    """

    stage: Stage
    reason: str
    message: str
    code: int | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """Where and as whom a batch is sent. One per destination; equal targets share batches."""

    account_id: str
    url: str
    passcode: SecretStr
    # The destination's `onAuthFailure: hold`: records refused with 401/403 wait for the
    # account's breaker to close instead of going to the DLQ as `auth_failed`.
    hold_on_auth_failure: bool = False
    # The destination's `attributionPartner`: where its `attribution` records go, with the
    # project's account token (a secret: never in repr, logs or failures).
    attribution_url: str | None = None
    account_token: SecretStr | None = None
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Hashed for every record batched: compute it once.
        token = None if self.account_token is None else self.account_token.get_secret_value()
        key = (
            self.account_id,
            self.url,
            self.passcode.get_secret_value(),
            self.hold_on_auth_failure,
            self.attribution_url,
            token,
        )
        object.__setattr__(self, "_hash", hash(key))

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Target(account_id={self.account_id!r}, url={self.url!r})"


@dataclass(frozen=True, slots=True)
class Origin:
    """The immutable token of one consumed Kafka message: everything a DLQ record needs (the
    original key, value, headers and timestamp, and where it was read), so nothing has to be
    re-read from Kafka to dead-letter it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None


class Letter(Protocol):
    """What the dead-letter stage reads of an in-flight message (`consumer.offsets.Entry` is
    one): its origin, the destination it was routed to, and every failure of its records."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers: ...
    @property
    def timestamp_ms(self) -> int | None: ...
    @property
    def destination_id(self) -> str | None: ...
    @property
    def failures(self) -> Sequence[Failure]: ...

"""The dead-letter stage: where a message goes when it cannot reach CleverTap.

A `Failure` says why, in terms an operator can act on; the DLQ record keeps the original bytes so
`dlq redrive` can re-publish it unchanged once the cause is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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

"""The deliver stage: batches to CleverTap's `/1/upload`, outcomes per record back.

`Deliverer` owns a thread with an asyncio loop and one httpx client; the poll thread submits
batches and drains `BatchResult`s, and routes their `Failure`s to the DLQ.
"""

from ._client import HTTP_ERRORS
from ._deliverer import FAILURE_REASONS, RETRY_REASONS, BatchResult, ClientFactory, Deliverer
from ._options import DeliveryOptions

__all__ = [
    "FAILURE_REASONS",
    "HTTP_ERRORS",
    "RETRY_REASONS",
    "BatchResult",
    "ClientFactory",
    "Deliverer",
    "DeliveryOptions",
]

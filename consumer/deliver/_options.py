"""Delivery settings in one value, so the deliverer never reads the environment itself."""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass

import httpx

from ..settings import Settings


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """How the deliverer talks to CleverTap.

    The retry budget holds two limits, whichever ends first: `max_attempts` requests per batch,
    and `retry_budget_s` from the batch's first request (time queued for a concurrency slot
    before that is backpressure, not failure). The budget is used in full: a backoff that would
    end past it is cut to what remains, so the last retry starts as the budget ends; none starts
    after it, and a request in progress keeps its own `timeout_s`.
    """

    timeout_s: float = 30.0
    max_in_flight: int = 15  # per account; CleverTap answers 429 above 15
    retry_budget_s: float = 300.0
    max_attempts: int = 20
    backoff_initial_s: float = 0.5  # full jitter: sleep is uniform in [0, initial * 2^(n-1)]
    backoff_max_s: float = 30.0
    connect_timeout_s: float = 10.0
    max_keepalive: int = 64
    aimd_increase: float = 1.0  # added to the limit per window of successful requests
    aimd_decrease: float = 0.5  # the limit is multiplied by this on a 429
    auth_probe_interval_s: float = 30.0  # an open 401/403 breaker lets one batch through this often

    def __post_init__(self) -> None:
        if not 1 <= self.max_in_flight <= 15:
            raise ValueError("max_in_flight must be between 1 and 15 (CleverTap's cap)")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be ≥ 1")
        if not 0 < self.aimd_decrease < 1:
            raise ValueError("aimd_decrease must be between 0 and 1")

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryOptions:
        return cls(
            timeout_s=settings.clevertap_timeout_seconds,
            max_in_flight=settings.clevertap_max_in_flight,
            retry_budget_s=settings.delivery_retry_budget_seconds,
            max_attempts=settings.delivery_max_attempts,
        )

    def http_client(self) -> httpx.AsyncClient:
        """The default client, one per account (its keep-alive pool for every host). The
        per-account limit bounds the connections, so the pool itself does not. The TLS context
        (the CA bundle, about a megabyte) is made once and shared by every account's client."""
        from ._client import USER_AGENT

        return httpx.AsyncClient(
            verify=_tls_context(),
            timeout=httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, self.connect_timeout_s)),
            limits=httpx.Limits(
                max_connections=None, max_keepalive_connections=self.max_keepalive, keepalive_expiry=30.0
            ),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verification (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), made once."""
    return httpx.create_ssl_context()

"""One upload attempt: POST a body to a target and say what came back, with HTTP metrics.

The passcode is unwrapped here and only here, straight into the request header (or, for the
partner endpoint, with the account token into the query string CleverTap asks for). Nothing this
module returns or logs contains a header or such a URL: transport errors are redacted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from .. import __version__, metrics
from ..contracts import Target

USER_AGENT = f"clevertap-consumer/{__version__}"
CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    content: bytes


@dataclass(frozen=True, slots=True)
class NoReply:
    """The request got no HTTP response. `error` is a metric label, `detail` the exception text."""

    error: str
    detail: str


# Every `error` label value of http_request_errors_total this module emits.
HTTP_ERRORS = ("timeout", "connect", "reset", "other")


def _error_kind(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
        return "reset"  # the server went away mid-request
    return "other"


async def post_upload(client: httpx.AsyncClient, target: Target, body: bytes) -> Reply | NoReply:
    headers = {
        "X-CleverTap-Account-Id": target.account_id,
        "X-CleverTap-Passcode": target.passcode.get_secret_value(),
        "Content-Type": CONTENT_TYPE,
    }
    started = time.perf_counter()
    try:
        response = await client.post(target.url, content=body, headers=headers)
    except httpx.TransportError as exc:
        kind = _error_kind(exc)
        metrics.http_request_errors.labels(kind).inc()
        return NoReply(kind, f"{type(exc).__name__}: {exc}"[:300])
    # Per account and exact status too: the 401/403 alert and the 429 panel read that series.
    metrics.observe_response(target.account_id, response.status_code, time.perf_counter() - started)
    return Reply(response.status_code, response.content)


async def get_attribution(
    client: httpx.AsyncClient, target: Target, params: dict[str, Any]
) -> Reply | NoReply:
    """One install to CleverTap's partner endpoint (§7.2): every parameter in the query string,
    the credentials included, as CleverTap documents it. httpx logs request URLs only at INFO,
    which consumer.logs holds at WARNING; the error text is stripped of the secrets anyway."""
    assert target.attribution_url is not None
    assert target.account_token is not None
    secrets = (target.account_token.get_secret_value(), target.passcode.get_secret_value())
    query = {
        **{k: str(v) for k, v in params.items()},
        "account_id": target.account_id,
        "account_token": secrets[0],
        "account_passcode": secrets[1],
    }
    started = time.perf_counter()
    try:
        response = await client.get(target.attribution_url, params=query)
    except httpx.TransportError as exc:
        kind = _error_kind(exc)
        metrics.http_request_errors.labels(kind).inc()
        detail = f"{type(exc).__name__}: {exc}"
        for secret in secrets:
            detail = detail.replace(secret, "**********")
        return NoReply(kind, detail[:300])
    metrics.observe_response(target.account_id, response.status_code, time.perf_counter() - started)
    return Reply(response.status_code, response.content)

"""One upload attempt: POST a body to a target and say what came back, with HTTP metrics.

The passcode is unwrapped here and only here, straight into the request header. Nothing this
module returns or logs contains a header.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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

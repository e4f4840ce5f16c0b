"""The fake's `/attribution`: CleverTap's generic partner endpoint (reference §7.2), checked as
CleverTap documents it, so a client can be tested against its rules without a whitelisted
partner account.

One install or custom event per request, in the query string (no batching). Answers: 200; 400
for a missing required parameter or a partner that is not whitelisted; 401 `Invalid Account
Info` for a wrong account id, passcode or token. The account token and passcode are checked and
never stored: what `/_fake/attributions` returns has neither.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

ATTRIBUTION_PATH: Final = "/attribution"
REQUIRED: Final = (
    "partner_name",
    "event_type",
    "device_identifier",
    "account_id",
    "account_token",
    "account_passcode",
    "platform",
)
INSTALL_TYPES: Final = frozenset({"organic_install", "inorganic_install"})
UTM: Final = ("utm_source", "utm_medium", "utm_campaign")
SECRETS: Final = frozenset({"account_token", "account_passcode"})


def _fail(status: int, error: str) -> tuple[int, bytes, None]:
    return status, orjson.dumps({"status": "fail", "error": error, "code": status}), None


def check(
    query: Mapping[str, list[str]],
    *,
    authorized: Callable[[str, str], bool],
    tokens: Mapping[str, str],
    partners: frozenset[str],
) -> tuple[int, bytes, dict[str, Any] | None]:
    """(status, body, the recorded parameters or None) for one `/attribution` request."""
    repeated = sorted(k for k, v in query.items() if len(v) > 1)
    if repeated:
        return _fail(400, f"parameter given more than once: {', '.join(repeated)}")
    params = {k: v[0] for k, v in query.items()}
    missing = [k for k in REQUIRED if not params.get(k, "").strip()]
    if missing:
        return _fail(400, f"missing required parameter(s): {', '.join(missing)}")
    if partners and params["partner_name"] not in partners:
        return _fail(400, "partner is not whitelisted")
    account = params["account_id"]
    token = tokens.get(account)
    if not authorized(account, params["account_passcode"]) or (
        token is not None and params["account_token"] != token
    ):
        return _fail(401, "Invalid Account Info")
    if params["event_type"] in INSTALL_TYPES and not any(params.get(k, "").strip() for k in UTM):
        return _fail(400, "an install needs utm_source, utm_medium or utm_campaign")
    if "timestamp" in params and not params["timestamp"].isdigit():
        return _fail(400, "timestamp must be epoch seconds")
    recorded = {k: v for k, v in params.items() if k not in SECRETS}
    return 200, b'{"status":"success"}', recorded

"""The device-token record an identify carries for push notifications.

CleverTap keys push tokens by objectId (its device id), so a token can only be uploaded when
objectId mapping is on and the event has an anonymousId. RudderStack also requires a mobile OS
name, even when the integrations object asks for a web-push (`chrome`) token: a browser never
gets a token upload. Both profiles keep those rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._js import truthy

TOKEN_TYPES: Final = frozenset({"chrome", "fcm", "gcm", "apns", "wns", "mpns"})
APPLE_OS: Final = frozenset({"ios", "watchos", "ipados", "tvos"})
INTEGRATION_NAMES: Final = ("clevertap", "Clevertap", "CleverTap", "CLEVERTAP")


def _integration_options(message: Mapping[str, Any]) -> Any:
    integrations = message.get("integrations")
    if type(integrations) is not dict:
        return None
    for name in INTEGRATION_NAMES:
        options = integrations.get(name)
        if truthy(options):
            return options
    return None


def _pruned(value: Any) -> Any:
    """Drop nulls and empty objects/arrays at every depth (None when nothing is left)."""
    if type(value) is dict:
        out = {}
        for k, v in value.items():
            kept = _pruned(v)
            if kept is not None:
                out[k] = kept
        return out or None
    if type(value) is list:
        kept = [v for v in (_pruned(x) for x in value) if v is not None]
        return kept or None
    return value


def token_record(message: Mapping[str, Any], object_id: Any, strict: bool = False) -> dict[str, Any] | None:
    """The `{"type":"token",...}` record for this identify, or None when there is none to send.

    `strict` (default profile) also requires the token to be a non-blank string: anything else
    is not a push token and CleverTap would refuse it (531–535).
    """
    context = message.get("context")
    if type(context) is not dict:
        return None
    device = context.get("device")
    token = device.get("token") if type(device) is dict else None
    if not truthy(token) or (strict and (type(token) is not str or not token.strip())):
        return None
    os = context.get("os")
    os_name = os.get("name") if type(os) is dict else None
    if type(os_name) is not str:
        return None  # RudderStack needs a string to lower-case (it fails on anything else)
    os_name = os_name.lower()
    if os_name == "android":
        token_type = "fcm"
    elif os_name in APPLE_OS:
        token_type = "apns"
    else:
        return None
    options = _integration_options(message)
    keys = None
    if type(options) is dict:
        wanted = options.get("deviceTokenType")
        if type(wanted) is str and wanted in TOKEN_TYPES:
            token_type = wanted
        keys = options.get("chromeKeys")
    token_data: dict[str, Any] = {"id": token, "type": token_type}
    record: dict[str, Any] = {"type": "token", "tokenData": token_data, "objectId": object_id}
    if keys is None and type(token) is str and type(object_id) is str:
        return record  # truthy strings only: nothing to prune
    if keys is not None:
        token_data["keys"] = keys
    pruned: dict[str, Any] = _pruned(record)
    return pruned

"""The fixed label sets the transform reports in, and its rejections.

Reasons and fix kinds become Prometheus label values and DLQ headers, so they are a small closed
vocabulary: a new label is a reviewed change here, never text built from an event. The messages
that RudderStack also produces are kept word for word, so users who grep for them find them.
"""

from __future__ import annotations

from typing import Final

from ._types import Fix, Rejected

# Reject reasons -------------------------------------------------------------------------------
MISSING_TYPE: Final = "missing_type"
UNSUPPORTED_TYPE: Final = "unsupported_type"
ANONYMOUS_NOT_ALLOWED: Final = "anonymous_not_allowed"
MISSING_EVENT: Final = "missing_event"
MISSING_PROPERTIES: Final = "missing_properties"
BAD_PRODUCTS: Final = "bad_products"
MISSING_IDENTITY: Final = "missing_identity"
RESTRICTED_EVENT: Final = "restricted_event"
NOT_AN_OBJECT: Final = "not_an_object"
TOO_DEEP: Final = "too_deep"

REJECT_REASONS: Final = frozenset(
    {
        MISSING_TYPE,
        UNSUPPORTED_TYPE,
        ANONYMOUS_NOT_ALLOWED,
        MISSING_EVENT,
        MISSING_PROPERTIES,
        BAD_PRODUCTS,
        MISSING_IDENTITY,
        RESTRICTED_EVENT,
        NOT_AN_OBJECT,
        TOO_DEEP,
    }
)

# Fix kinds (default profile) ------------------------------------------------------------------
KEY_TOO_LONG: Final = "key_too_long"
VALUE_TOO_LONG: Final = "value_too_long"
TOO_MANY_PROPERTIES: Final = "too_many_properties"
PHONE_FORMAT: Final = "phone_format"
CHARGED_ITEMS: Final = "charged_items"
INVALID_DATE: Final = "invalid_date"
INVALID_TIMESTAMP: Final = "invalid_timestamp"
NOT_AN_OBJECT_FIELD: Final = "not_an_object"
INVALID_EMAIL: Final = "invalid_email"
YES_NO: Final = "yes_no"
MSG_FLAG: Final = "msg_flag"
NAME_FROM_PART: Final = "name_from_part"
GENDER: Final = "gender"
AMOUNT: Final = "amount"
ITEM_NESTED: Final = "charged_item_nested"
PROFILE_COMMAND: Final = "profile_command"

FIX_KINDS: Final = frozenset(
    {
        INVALID_EMAIL,
        YES_NO,
        MSG_FLAG,
        NAME_FROM_PART,
        GENDER,
        AMOUNT,
        ITEM_NESTED,
        PROFILE_COMMAND,
        KEY_TOO_LONG,
        VALUE_TOO_LONG,
        TOO_MANY_PROPERTIES,
        PHONE_FORMAT,
        CHARGED_ITEMS,
        INVALID_DATE,
        INVALID_TIMESTAMP,
        NOT_AN_OBJECT_FIELD,
    }
)

# Rejections shared by both profiles (RudderStack's exact messages) -----------------------------
REJECT_MISSING_TYPE: Final = Rejected(400, "Message Type is not present. Aborting message.", MISSING_TYPE)
REJECT_UNSUPPORTED_TYPE: Final = Rejected(400, "Message type not supported", UNSUPPORTED_TYPE)
REJECT_ANONYMOUS: Final = Rejected(
    400, "userId, not present cannot track anonymous user", ANONYMOUS_NOT_ALLOWED
)
REJECT_MISSING_EVENT: Final = Rejected(400, 'Missing required value from "event"', MISSING_EVENT)
REJECT_MISSING_PROPERTIES: Final = Rejected(
    400, 'Missing required value from "properties"', MISSING_PROPERTIES
)
REJECT_BAD_PRODUCTS: Final = Rejected(
    400, "Products property value must be an array of objects", BAD_PRODUCTS
)
REJECT_NO_OBJECT_ID_OR_USER: Final = Rejected(
    400, "Unable to process without anonymousId or userId", MISSING_IDENTITY
)
REJECT_NOT_AN_OBJECT: Final = Rejected(400, "message is not a JSON object", NOT_AN_OBJECT)
REJECT_TOO_DEEP: Final = Rejected(400, "message is nested too deeply to transform", TOO_DEEP)

# Rejections of the default profile only -------------------------------------------------------
REJECT_IDENTIFY_WITHOUT_ID: Final = Rejected(
    400,
    "identify has no user identifier (userId, traits.userId, traits.id, context.traits.userId, "
    "context.traits.id or anonymousId); CleverTap rejects a profile without identity",
    MISSING_IDENTITY,
)
REJECT_EVENT_WITHOUT_ID: Final = Rejected(
    400,
    "event has no user identifier (userId, traits.userId, traits.id, context.traits.userId, "
    "context.traits.id or anonymousId); CleverTap rejects an event without identity",
    MISSING_IDENTITY,
)
REJECT_ALIAS_WITHOUT_IDS: Final = Rejected(
    400, "alias needs both previousId and userId (strings or numbers)", MISSING_IDENTITY
)
REJECT_EVENT_NAME_NOT_TEXT: Final = Rejected(
    400, "track event name must be a non-empty string or a number", MISSING_EVENT
)


def restricted_event(name: str) -> Rejected:
    """CleverTap refuses these system event names (code 513): sending one only fails later."""
    shown = name if len(name) <= 80 else name[:80] + "…"
    return Rejected(
        400, f"event name {shown!r} is reserved by CleverTap and cannot be uploaded", RESTRICTED_EVENT
    )


def short_field(name: str) -> str:
    """A field name fit for a log line: keys over CleverTap's limit can be arbitrarily long."""
    return name if len(name) <= 64 else name[:64] + "…"


def fix(kind: str, field: str, dropped: bool) -> Fix:
    return Fix(kind, short_field(field), "dropped" if dropped else "fixed")

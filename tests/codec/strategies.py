"""Hypothesis strategies for JSON-like RudderStack messages."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import strategies as st

# No lone surrogates: they are not valid in JSON text or UTF-8.
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
# Every integer orjson and Avro's long can carry between them (u64 travels in `extra`).
integers = st.integers(min_value=-(2**63), max_value=2**64 - 1)
floats = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | integers | floats | text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)

ID_FIELDS = ("messageId", "userId", "anonymousId", "previousId", "groupId", "event", "name")
TEXT_FIELDS = (
    "type",
    "category",
    "channel",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "receivedAt",
    "rudderId",
    "request_ip",
    "destinationId",
)
JSON_FIELDS = ("properties", "traits", "context", "integrations")

known_fields = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(ID_FIELDS, scalars | json_values),
        **dict.fromkeys(TEXT_FIELDS, text | scalars),
        **dict.fromkeys(JSON_FIELDS, json_values),
    },
)
other_fields = st.dictionaries(
    text | st.sampled_from(["extra", "recordId", "session_id"]), json_values, max_size=4
)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    message = draw(other_fields)
    message.update(draw(known_fields))
    return message


def strict(value: Any) -> bytes:
    """A comparison key that tells 1 from 1.0 and True from 1 (plain == does not)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)

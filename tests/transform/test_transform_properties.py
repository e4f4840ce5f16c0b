"""Properties over arbitrary JSON-like messages: the transform never fails, and what the default
profile sends always fits CleverTap's documented limits."""

from __future__ import annotations

import copy
import re
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.clevertap_api import MAX_EVENT_PROPERTIES, MAX_KEY_BYTES, MAX_VALUE_BYTES
from consumer.transform import (
    FIX_KINDS,
    REJECT_REASONS,
    Accepted,
    EventFilter,
    Filtered,
    Profile,
    Rejected,
    TransformConfig,
    transform,
)

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        ["", " ", "0", "2021-03-10T11:59:22.080Z", "2024-01-15", "1615377562", "+1 415 555 0100"]
    )
)
long_text = st.text(min_size=100, max_size=700)
keys = (
    st.text(max_size=10)
    | st.sampled_from(["a.b", "ts", "category-unsubscribe", "__proto__", "0", "10", "Phone", "DOB"])
    | st.text(min_size=100, max_size=140)
)
json_values = st.recursive(
    scalars | long_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=14,
)


def objects(known: list[str]) -> st.SearchStrategy[Any]:
    """Mostly objects with the keys the transform looks at, sometimes any JSON value."""
    known_keys = st.dictionaries(st.sampled_from(known), json_values, max_size=len(known))
    return st.one_of(
        st.builds(lambda a, b: {**a, **b}, known_keys, st.dictionaries(keys, json_values, max_size=8)),
        json_values,
    )


TRAIT_KEYS = [
    "email",
    "name",
    "firstName",
    "lastName",
    "phone",
    "gender",
    "birthday",
    "employed",
    "userId",
    "id",
    "ts",
    "overrideFields",
    "Email",
    "MSG-email",
    "address",
]
PROPERTY_KEYS = [
    "ts",
    "name",
    "event",
    "checkout_id",
    "revenue",
    "products",
    "email",
    "Items",
    "category-resubscribe",
]
ids = st.sampled_from(["u1", 7, 0, "", " ", None, False, 1.5]) | json_values
names = (
    st.sampled_from(["Order Completed", "order completed", "App Launched", "Signed Up", "", " "])
    | json_values
)

messages = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["identify", "track", "page", "screen", "alias", "TRACK", "group"])
        | json_values,
        "userId": ids,
        "anonymousId": ids,
        "previousId": ids,
        "event": names,
        "name": names,
        "properties": objects(PROPERTY_KEYS),
        "traits": objects(TRAIT_KEYS),
        "context": st.fixed_dictionaries(
            {},
            optional={
                "traits": objects(TRAIT_KEYS),
                "os": st.fixed_dictionaries(
                    {}, optional={"name": st.sampled_from(["Android", "iOS", "Mac OS"]) | json_values}
                ),
                "device": st.fixed_dictionaries({}, optional={"token": ids}),
            },
        )
        | json_values,
        "integrations": st.fixed_dictionaries(
            {}, optional={"CleverTap": objects(["deviceTokenType", "chromeKeys"])}
        )
        | json_values,
        "timestamp": st.sampled_from(["2021-03-10T11:59:22.080Z", "garbage"]) | json_values,
        "originalTimestamp": st.sampled_from(["2021-03-10T11:59:22Z", "1615377562000"]) | json_values,
    },
)
configs = st.builds(
    TransformConfig,
    account_id=st.just("ACC"),
    track_anonymous=st.booleans(),
    enable_object_id_mapping=st.booleans(),
    profile=st.sampled_from(list(Profile)),
    event_filter=st.sampled_from(list(EventFilter)),
    event_names=st.frozensets(st.sampled_from(["Signed Up", "Order Completed", "7"]), max_size=2),
)

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
DATE = re.compile(r"\$D_-?[0-9]+")


@SETTINGS
@given(message=messages, config=configs)
def test_transform_never_fails_and_never_changes_its_input(
    message: dict[str, Any], config: TransformConfig
) -> None:
    before = copy.deepcopy(message)
    result = transform(message, config)
    assert isinstance(result, Accepted | Rejected | Filtered)
    assert message == before
    assert transform(message, config) == result  # pure: the same answer every time
    if isinstance(result, Rejected):
        assert result.status == 400
        assert result.reason in REJECT_REASONS
        assert result.message
    if isinstance(result, Accepted):
        assert result.records
        assert {f.kind for f in result.fixes} <= FIX_KINDS
        for record in result.records:
            orjson.dumps(record.data)  # what the batcher does with it


@SETTINGS
@given(message=messages, config=configs)
def test_arbitrary_values_are_handled(message: dict[str, Any], config: TransformConfig) -> None:
    assert isinstance(transform(message, config), Accepted | Rejected | Filtered)


def _fits(key: str, value: Any) -> None:
    assert len(key.encode()) <= MAX_KEY_BYTES, key
    if isinstance(value, str):
        assert len(value.encode()) <= MAX_VALUE_BYTES, key


def _usable_id(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int | float) and not isinstance(value, bool)


@SETTINGS
@given(message=messages, track_anonymous=st.booleans(), object_ids=st.booleans())
def test_default_profile_output_always_fits_clevertaps_limits(
    message: dict[str, Any], track_anonymous: bool, object_ids: bool
) -> None:
    config = TransformConfig(
        account_id="ACC",
        track_anonymous=track_anonymous,
        enable_object_id_mapping=object_ids,
        profile=Profile.DEFAULT,
    )
    result = transform(message, config)
    if not isinstance(result, Accepted):
        return
    for record in result.records:
        data = record.data
        assert record.kind == data["type"]
        if record.kind == "token":
            assert _usable_id(data["objectId"])
            continue
        identifiers = [data[k] for k in ("identity", "objectId") if k in data]
        assert len(identifiers) == 1
        assert _usable_id(identifiers[0])
        if "ts" in data:
            assert type(data["ts"]) is int
            assert data["ts"] > 0
        if record.kind == "event":
            assert isinstance(data["evtName"], str)
            assert data["evtName"].strip()
            evt_data = data["evtData"]
            assert len(evt_data) <= MAX_EVENT_PROPERTIES
            for key, value in evt_data.items():
                _fits(key, value)
                if key == "Items" and data["evtName"] == "Charged":
                    assert value
                    assert all(isinstance(item, dict) for item in value)
                elif not key.startswith("category-"):
                    assert value is None or isinstance(value, str | int | float | bool), key
        else:
            for key, value in data["profileData"].items():
                _fits(key, value)
            if "Phone" in data["profileData"]:
                assert E164.fullmatch(data["profileData"]["Phone"])
            if "DOB" in data["profileData"]:
                assert DATE.fullmatch(data["profileData"]["DOB"])

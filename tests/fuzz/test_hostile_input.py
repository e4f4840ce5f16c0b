"""Fuzzing the stages that read what others wrote: the decoder (arbitrary bytes), the transform
and the upload encoding (arbitrary JSON, deep nesting), the destinations file loader (arbitrary
bytes and text). Each may refuse, with its own error type and a reason; none may raise anything
else, recurse out of the stack or hang (a hypothesis deadline per example catches a hang)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.batch import UnencodableRecordError, encode
from consumer.codec import DecodeError, Decoder, Encoder, to_message
from consumer.destinations import ConfigError, parse_destinations, parse_yaml_text, read_destinations_data
from consumer.transform import Accepted, Profile, TransformConfig, transform
from tests.codec.strategies import json_values, messages

FUZZ = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
DECODER = Decoder()
ENCODED = Encoder().encode({"type": "track", "event": "E", "userId": "u", "properties": {"a": [1, {"b": 2}]}})
CONFIGS = [TransformConfig(account_id="A", profile=p, track_anonymous=True) for p in Profile]


def refusal(errors: type[Exception], fn: Callable[..., Any], *args: Any) -> Exception | None:
    """The `errors` exception `fn(*args)` raised, or None; any other exception fails the test."""
    try:
        fn(*args)
    except errors as exc:
        return exc
    return None


def _decode(value: bytes) -> None:
    exc = refusal(DecodeError, lambda v: to_message(DECODER.decode(v)), value)
    if isinstance(exc, DecodeError):
        assert exc.reason
        assert not exc.transient


@FUZZ
@given(st.binary(max_size=2000))
def test_the_decoder_refuses_arbitrary_bytes_with_a_reason(value: bytes) -> None:
    _decode(value)


@FUZZ
@given(st.integers(0, len(ENCODED)), st.binary(max_size=64), st.integers(0, len(ENCODED) - 1))
def test_the_decoder_survives_cut_and_corrupted_avro(cut: int, junk: bytes, at: int) -> None:
    _decode(ENCODED[:cut])
    _decode(ENCODED[:at] + junk + ENCODED[at + len(junk) :])


def _nest(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"n": value}
    return value


def _run_transform(message: Any) -> None:
    for config in CONFIGS:
        result = transform(message, config)
        if isinstance(result, Accepted):
            for record in result.records:
                exc = refusal(UnencodableRecordError, encode, record)
                if isinstance(exc, UnencodableRecordError):
                    assert exc.failure.reason in ("too_deep", "not_json")


@FUZZ
@given(messages())
def test_the_transform_and_upload_encoding_take_any_message(message: dict[str, Any]) -> None:
    _run_transform(message)


@FUZZ
@given(
    st.sampled_from(["track", "identify", "page", "screen", "alias"]),
    st.sampled_from(["Order Completed", "Product Added", "Signed Up"]),
    st.sampled_from(["properties", "traits", "context", "products"]),
    st.integers(200, 1100),
    st.booleans(),
    json_values,
)
def test_deep_nesting_anywhere_is_refused_not_a_crash(  # noqa: PLR0917 (one per strategy)
    kind: str, event: str, where: str, depth: int, as_list: bool, leaf: Any
) -> None:
    deep = _nest(leaf, depth, as_list)
    message: dict[str, Any] = {"type": kind, "event": event, "userId": "u", "previousId": "p"}
    if where == "products":
        message["properties"] = {"products": [{"product_id": "p", "x": deep}]}
    else:
        message[where] = {"x": deep}
    _run_transform(message)
    _run_transform(_nest(message, depth, as_list))


def _load(data: Any) -> None:
    exc = refusal(ConfigError, parse_destinations, data)
    assert exc is None or str(exc)


def _load_text(text: str) -> None:
    exc = refusal(ConfigError, lambda t: _load(parse_yaml_text(t, "fuzz")), text)
    assert exc is None or str(exc)


@FUZZ
@given(st.binary(max_size=500))
def test_the_destinations_loader_refuses_arbitrary_bytes(tmp_path_factory: Any, content: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("d")) / "destinations.yaml"
    path.write_bytes(content)
    exc = refusal(ConfigError, lambda p: _load(read_destinations_data(p)), path)
    assert exc is None or str(exc)


@FUZZ
@given(st.text(max_size=500))
def test_the_destinations_loader_refuses_arbitrary_text(text: str) -> None:
    _load_text(text)


@FUZZ
@given(json_values, st.integers(0, 3000), st.booleans())
def test_the_destinations_loader_refuses_arbitrary_structures(value: Any, depth: int, as_list: bool) -> None:
    data = {
        "destinations": [
            {"id": "d", "accountId": "A", "passcode": "pass-long", "x": _nest(value, depth, as_list)}
        ]
    }
    _load(data)
    _load_text(yaml.safe_dump(value))

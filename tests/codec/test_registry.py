"""Registry mode against a Schema Registry speaking HTTP on 127.0.0.1 (tests/support/schema_registry.py)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from pydantic import AnyHttpUrl, SecretStr

from consumer.codec import DecodeError, Decoder, Encoder, RegistrationError, Registry, to_envelope, to_message
from consumer.codec.schema import schema_text
from consumer.sample import sample_events
from consumer.settings import Settings
from tests.support.schema_registry import SchemaRegistryServer, running_registry

EVENTS = list(sample_events(20, seed=4))
PASSWORD = "s3cr3t-Pa55word"
USER_INFO = f"reader:{PASSWORD}"


def failure(decoder: Decoder, value: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decoder.decode(value)
    return caught.value


def test_encoder_registers_under_topic_value_and_frames_with_the_id(registry: SchemaRegistryServer) -> None:
    registry.register("other-value", '{"type": "string"}')  # so our schema does not get id 1 by luck
    encoder = Encoder(Registry.connect(registry.url), "clicks")
    assert registry.subjects == {"other-value": [1], "clicks-value": [2]}
    assert encoder.schema_id == 2
    assert registry.schemas[2]["schema"] == schema_text()  # registered with its docs
    value = encoder.encode(EVENTS[0])
    assert value[:5] == b"\x00\x00\x00\x00\x02"
    decoder = Decoder(Registry.connect(registry.url))
    assert [to_message(decoder.decode(encoder.encode(e))) for e in EVENTS] == EVENTS


def test_bytes_match_confluents_own_serializer_both_ways(registry: SchemaRegistryServer) -> None:
    client = SchemaRegistryClient({"url": registry.url})
    ctx = SerializationContext("interop", MessageField.VALUE)
    serializer = AvroSerializer(client, schema_text())
    deserializer = AvroDeserializer(client)
    encoder = Encoder(Registry.connect(registry.url), "interop")
    decoder = Decoder(Registry.connect(registry.url))
    for event in EVENTS:
        ours = encoder.encode(event)
        theirs = serializer(to_envelope(event), ctx)
        assert ours == theirs
        assert to_message(decoder.decode(theirs)) == event
        assert deserializer(ours, ctx) == to_envelope(event)


def test_unknown_schema_id_is_permanent_and_asked_for_once_a_while(registry: SchemaRegistryServer) -> None:
    decoder = Decoder(Registry.connect(registry.url), not_found_ttl=0.3)
    value = b"\x00\x00\x00\x00\x63" + Encoder().encode(EVENTS[0])
    for _ in range(3):
        error = failure(decoder, value)
        assert (error.reason, error.transient) == ("unknown_schema_id", False)
        assert "schema id 99" in error.message
        assert "40403" in error.message
    assert registry.requests["GET /schemas/ids/{id}"] == 1  # remembered for a while
    time.sleep(0.4)
    assert failure(decoder, value).reason == "unknown_schema_id"
    assert registry.requests["GET /schemas/ids/{id}"] == 2


def test_registry_down_is_transient_and_decoding_resumes_when_it_is_back() -> None:
    with running_registry() as registry:
        encoder = Encoder(Registry.connect(registry.url), "t")
        value = encoder.encode(EVENTS[0])
        url = registry.url
    decoder = Decoder(Registry.connect(url))  # the server is gone: connection refused
    error = failure(decoder, value)
    assert (error.reason, error.transient) == ("registry_unavailable", True)
    assert url.removeprefix("http://") in error.message

    with running_registry() as registry:
        registry.fail_with(503)
        decoder = Decoder(Registry.connect(registry.url))
        registry.register("t-value", schema_text())
        error = failure(decoder, value)
        assert (error.reason, error.transient) == ("registry_unavailable", True)
        assert "HTTP 503" in error.message
        registry.fail_with(None)
        assert to_message(decoder.decode(value)) == EVENTS[0]


def test_basic_auth_works_and_the_user_info_never_shows() -> None:
    with running_registry(user_info=USER_INFO) as registry:
        settings = Settings.model_construct(
            schema_registry_url=AnyHttpUrl(registry.url),
            schema_registry_basic_auth_user_info=SecretStr(USER_INFO),
        )
        encoder = Encoder.from_settings(settings, "secure")
        decoder = Decoder.from_settings(settings)
        assert to_message(decoder.decode(encoder.encode(EVENTS[1]))) == EVENTS[1]
        value = encoder.encode(EVENTS[1])

        wrong = Decoder(Registry.connect(registry.url, SecretStr("reader:not-it")))
        error = failure(wrong, value)
        assert (error.reason, error.transient) == ("registry_error", True)
        assert "HTTP 401" in error.message
        assert "not-it" not in error.message

        with pytest.raises(RegistrationError) as refused:
            Encoder(Registry.connect(registry.url, SecretStr("reader:not-it")), "secure")
        assert "HTTP 401" in str(refused.value)
        assert "not-it" not in str(refused.value)
        url = registry.url

    # Unreachable, credentials given as a setting and inside the URL: neither may surface.
    in_url = url.replace("http://", f"http://{USER_INFO}@")
    messages = [
        failure(Decoder(Registry.connect(url, SecretStr(USER_INFO))), value).message,
        failure(Decoder(Registry.connect(in_url)), value).message,
        repr(failure(Decoder(Registry.connect(in_url)), value)),
    ]
    for message in messages:
        assert PASSWORD not in message
        assert USER_INFO not in message
        assert url.removeprefix("http://") in message


def test_user_info_both_in_url_and_setting_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="userinfo") as caught:
        Registry.connect(f"http://{USER_INFO}@127.0.0.1:1", SecretStr(USER_INFO))
    assert PASSWORD not in str(caught.value)


def test_no_registry_url_means_plain_avro() -> None:
    settings = Settings.model_construct(schema_registry_url=None, schema_registry_basic_auth_user_info=None)
    decoder, encoder = Decoder.from_settings(settings), Encoder.from_settings(settings, "t")
    assert decoder.registry is None
    assert encoder.schema_id is None
    assert to_message(decoder.decode(encoder.encode(EVENTS[2]))) == EVENTS[2]


def test_a_404_that_is_not_schema_not_found_is_a_configuration_problem(
    registry: SchemaRegistryServer,
) -> None:
    value = Encoder(Registry.connect(registry.url), "t").encode(EVENTS[0])
    wrong_path = Decoder(Registry.connect(registry.url + "/not/the/api"))
    error = failure(wrong_path, value)
    assert (error.reason, error.transient) == ("registry_error", True)  # retried, not dead-lettered
    assert "HTTP 404" in error.message

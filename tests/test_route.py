"""Routing by destinationId field or header, with unknown ids refused rather than crashing."""

from __future__ import annotations

import pytest

from consumer.contracts import Failure
from consumer.destinations import ConfigError, parse_destinations
from consumer.route import Route, Router

FILE = {
    "destinations": [
        {"id": "eu", "accountId": "ACC-1", "passcode": "p1"},
        {"id": "eu-copy", "accountId": "ACC-1", "passcode": "p1", "trackAnonymous": True},
        {"id": "india", "accountId": "ACC-2", "passcodeEnv": "IN_PW", "region": "IN"},
    ]
}


def _router(base_url: str | None = None) -> Router:
    return Router.from_destinations(parse_destinations(FILE), base_url, {"IN_PW": "p2"})


def test_field_routes_and_header_overrides() -> None:
    router = _router()
    by_field = router.route({"destinationId": "india"}, [])
    assert isinstance(by_field, Route)
    assert by_field.target.url == "https://in1.api.clevertap.com/1/upload"
    by_header = router.route({"destinationId": "india"}, [("destinationId", b"eu")])
    assert isinstance(by_header, Route)
    assert by_header.destination_id == "eu"
    assert by_header.target.url == "https://api.clevertap.com/1/upload"


def test_unknown_and_missing_destinations_are_failures_for_the_dlq() -> None:
    router = _router()
    unknown = router.route({"destinationId": "nope"}, [])
    assert unknown == Failure("route", "unknown_destination", "destinationId 'nope' is not configured")
    missing = router.route({"type": "track"}, [])
    assert isinstance(missing, Failure)
    assert missing.reason == "missing_destination"


def test_same_account_and_credentials_share_one_target() -> None:
    routes = _router().routes
    assert routes["eu"].target is routes["eu-copy"].target
    assert routes["eu"].config.track_anonymous is False
    assert routes["eu-copy"].config.track_anonymous is True


def test_base_url_override_sends_every_region_to_one_place() -> None:
    routes = _router("http://127.0.0.1:8080/").routes
    assert {r.target.url for r in routes.values()} == {"http://127.0.0.1:8080/1/upload"}
    assert routes["eu"].target is not routes["india"].target


def test_a_missing_passcode_stops_start_up() -> None:
    with pytest.raises(ConfigError, match="IN_PW is not set"):
        Router.from_destinations(parse_destinations(FILE), None, {})

"""A RudderStack CleverTap destination config pastes into the destinations file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from consumer.cli import main
from consumer.destinations import ConfigError, parse_destinations
from consumer.transform import EventFilter
from tests.privacy.rudderstack_config import full_config


def _load(**overrides: object) -> object:
    return parse_destinations({"destinations": [{"id": "d1", **full_config(**overrides)}]}).destinations[0]


def test_every_key_of_a_full_rudderstack_config_is_accepted() -> None:
    d = parse_destinations({"destinations": [{"id": "d1", **full_config()}]}).destinations[0]
    assert d.host == "api.clevertap.com"  # region "none": the default data centre
    assert d.event_filtering_option is EventFilter.DISABLE
    assert d.whitelisted_events == ()
    assert d.blacklisted_events == ()
    assert d.ignored_keys == ("useNativeSDK", "connectionMode")
    assert d.account_token is not None
    assert d.account_token.get_secret_value() == "tok-secret-123"
    assert "tok-secret-123" not in repr(d)
    assert "tok-secret-123" not in str(d.model_dump())


def test_empty_list_items_are_dropped_but_real_names_kept() -> None:
    d = parse_destinations(
        {
            "destinations": [
                {
                    "id": "d1",
                    **full_config(
                        eventFilteringOption="blacklistedEvents",
                        blacklistedEvents=[{"eventName": ""}, {"eventName": "Debug"}, {}],
                    ),
                }
            ]
        }
    ).destinations[0]
    assert d.blacklisted_events == ("Debug",)
    assert d.transform_config().event_names == frozenset({"Debug"})


def test_old_style_flat_values_are_accepted_too() -> None:
    d = parse_destinations(
        {"destinations": [{"id": "d1", **full_config(useNativeSDK=False, connectionMode="cloud")}]}
    ).destinations[0]
    assert d.ignored_keys == ("useNativeSDK", "connectionMode")


@pytest.mark.parametrize("key", ["useNativeSdk", "apiKey", "sendToDevice"])
def test_truly_unknown_keys_still_stop_the_load_naming_them(key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_destinations({"destinations": [{"id": "d1", **full_config(**{key: True})}]})
    assert key in str(err.value)
    assert "destinations[0]" in str(err.value)


def test_a_wrongly_shaped_per_platform_value_names_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        parse_destinations({"destinations": [{"id": "d1", **full_config(connectionMode={"web": ["x"]})}]})
    assert "connectionMode" in str(err.value)


def test_check_config_redacts_the_account_token(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"destinations": [{"id": "d1", **full_config()}]}))
    result = CliRunner().invoke(main, ["check-config", "--destinations", str(path)])
    assert result.exit_code == 0, result.output
    assert "tok-secret-123" not in result.output
    assert "pass-one" not in result.output
    shown = json.loads(result.output)["destinations"][0]
    assert shown["accountToken"] == "**********"
    assert shown["ignoredKeys"] == ["useNativeSDK", "connectionMode"]
    assert shown["consentRules"] == 1

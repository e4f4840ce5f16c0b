"""The destinations file: what loads, what is refused, and how the refusal reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from consumer.cli import main
from consumer.destinations import ConfigError, load_destinations, parse_destinations
from consumer.transform import EventFilter, Profile


def _one(**extra: object) -> dict[str, object]:
    return {"destinations": [{"id": "d1", "accountId": "ACC-1", "passcode": "pw-1", **extra}]}


def test_yaml_and_json_files_load_the_same(tmp_path: Path) -> None:
    as_json = tmp_path / "d.json"
    as_json.write_text(json.dumps(_one(region="in1", trackAnonymous=True)))
    as_yaml = tmp_path / "d.yaml"
    as_yaml.write_text(
        "destinations:\n  - id: d1\n    accountId: ACC-1\n    passcode: pw-1\n    region: in1\n    trackAnonymous: true\n"
    )
    assert load_destinations(as_json) == load_destinations(as_yaml)
    d = load_destinations(as_yaml).destinations[0]
    assert d.host == "in1.api.clevertap.com"
    assert d.track_anonymous is True
    assert d.profile is Profile.DEFAULT


@pytest.mark.parametrize(
    ("region", "host"),
    [
        (None, "api.clevertap.com"),
        ("none", "api.clevertap.com"),
        ("EU", "api.clevertap.com"),
        ("eu1", "api.clevertap.com"),
        ("IN", "in1.api.clevertap.com"),
        ("Us1", "us1.api.clevertap.com"),
        ("SG", "sg1.api.clevertap.com"),
        ("sk", "sk1.api.clevertap.com"),
        ("ID", "aps3.api.clevertap.com"),
        ("uae", "mec1.api.clevertap.com"),
        ("MEC1", "mec1.api.clevertap.com"),
    ],
)
def test_region_aliases_and_codes_are_case_insensitive(region: str | None, host: str) -> None:
    assert parse_destinations(_one(region=region)).destinations[0].host == host


def test_unknown_region_stops_the_load_naming_entry_and_choices() -> None:
    with pytest.raises(ConfigError) as err:
        parse_destinations(_one(region="eu2"))
    text = str(err.value)
    assert "destinations[0]" in text
    assert "'eu2'" in text
    assert "in1" in text


def test_rudderstack_profile_keeps_any_region_as_subdomain() -> None:
    d = parse_destinations(_one(region="eu2", profile="rudderstack")).destinations[0]
    assert d.host == "eu2.api.clevertap.com"


def test_unknown_key_is_an_error_that_names_it() -> None:
    with pytest.raises(ConfigError, match=r"destinations\[0\]\.acountId"):
        parse_destinations(_one(acountId="typo"))


def test_exactly_one_passcode_source() -> None:
    both = {"destinations": [{"id": "d1", "accountId": "A", "passcode": "x", "passcodeEnv": "PW"}]}
    with pytest.raises(ConfigError, match="exactly one of passcode"):
        parse_destinations(both)
    none = {"destinations": [{"id": "d1", "accountId": "A"}]}
    with pytest.raises(ConfigError, match="exactly one of passcode"):
        parse_destinations(none)


def test_duplicate_ids_are_refused() -> None:
    data = _one()
    data["destinations"] = [*data["destinations"], *data["destinations"]]  # type: ignore[misc]
    with pytest.raises(ConfigError, match="duplicate destination id 'd1'"):
        parse_destinations(data)


def test_passcode_from_file_and_env(tmp_path: Path) -> None:
    secret = tmp_path / "pc"
    secret.write_text("from-file\n")
    data = {
        "destinations": [
            {"id": "f", "accountId": "A", "passcodeFile": str(secret)},
            {"id": "e", "accountId": "A", "passcodeEnv": "CT_PW"},
        ]
    }
    file_dest, env_dest = parse_destinations(data).destinations
    assert file_dest.resolve_passcode().get_secret_value() == "from-file"
    assert env_dest.resolve_passcode({"CT_PW": "from-env"}).get_secret_value() == "from-env"
    with pytest.raises(ConfigError, match="CT_PW is not set"):
        env_dest.resolve_passcode({})


def test_passcode_never_shows_in_repr_or_errors() -> None:
    d = parse_destinations(_one(passcode="very-secret-pw")).destinations[0]
    assert "very-secret-pw" not in repr(d)
    with pytest.raises(ConfigError) as err:
        parse_destinations(_one(passcode="very-secret-pw", region="bogus"))
    assert "very-secret-pw" not in str(err.value)


def test_event_filter_accepts_rudderstack_items_and_plain_names() -> None:
    d = parse_destinations(
        _one(
            eventFilteringOption="whitelistedEvents",
            whitelistedEvents=[{"eventName": "Signed Up"}, "Order Completed"],
        )
    ).destinations[0]
    cfg = d.transform_config()
    assert cfg.event_filter is EventFilter.ALLOW
    assert cfg.event_names == frozenset({"Signed Up", "Order Completed"})


def test_check_config_prints_effective_config_with_passcode_redacted(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_one(passcode="very-secret-pw", region="SG")))
    result = CliRunner().invoke(main, ["check-config", "--destinations", str(path)])
    assert result.exit_code == 0, result.output
    assert "very-secret-pw" not in result.output
    shown = json.loads(result.output)["destinations"][0]
    assert shown["host"] == "sg1.api.clevertap.com"
    assert shown["passcode"] == "**********"


def test_check_config_fails_with_a_named_field(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("destinations:\n  - id: d1\n    accountId: ''\n    passcode: x\n")
    result = CliRunner().invoke(main, ["check-config", "--destinations", str(path)])
    assert result.exit_code == 2
    assert "accountId" in result.output

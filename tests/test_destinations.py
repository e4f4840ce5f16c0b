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


# --- attribution options and `sources:` ------------------------------------------------------


def _two(**extra: object) -> dict[str, object]:
    return {
        "destinations": [
            {"id": "d1", "accountId": "ACC-1", "passcode": "pw-1"},
            {"id": "d2", "accountId": "ACC-2", "passcode": "pw-2"},
        ],
        **extra,
    }


def _refusal(doc: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as err:
        parse_destinations(doc)
    return str(err.value)


def test_sources_bind_topics_to_formats_and_destinations() -> None:
    doc = _two(
        sources=[
            {
                "topic": "af",
                "format": "appsflyer",
                "destinationBy": {"field": "app_id", "map": {"a": "d1", "b": "d2"}},
            },
            {"topic": "branch", "format": "branch", "destination": "d2"},
            {"topic": "rs-json"},
        ]
    )
    sources = parse_destinations(doc).sources
    assert [(s.topic, s.format, s.destination_ids) for s in sources] == [
        ("af", "appsflyer", ("d1", "d2")),
        ("branch", "branch", ("d2",)),
        ("rs-json", "rudderstack", ()),
    ]
    assert parse_destinations(_two()).sources == ()


@pytest.mark.parametrize(
    ("sources", "needles"),
    [
        (
            [{"topic": "t", "format": "appsflyer", "destination": "nope"}],
            ["sources[0]", "'nope'", "unknown destination"],
        ),
        (
            [
                {
                    "topic": "t",
                    "format": "adjust",
                    "destinationBy": {"field": "app", "map": {"x": "d1", "y": "ghost"}},
                }
            ],
            ["'ghost'"],
        ),
        (
            [{"topic": "t", "format": "branch", "destination": "d1"}, {"topic": "t", "destination": "d2"}],
            ["'t'", "more than once"],
        ),
        ([{"topic": "t", "format": "appsflyer"}], ["appsflyer", "destination or destinationBy"]),
        (
            [{"topic": "t", "destination": "d1", "destinationBy": {"field": "a", "map": {"x": "d1"}}}],
            ["not both"],
        ),
        ([{"topic": "t", "format": "kochava", "destination": "d1"}], ["sources[0].format", "'appsflyer'"]),
        ([{"topic": "t", "format": "branch", "destination": "d1", "extra": 1}], ["extra"]),
        (
            [{"topic": "t", "format": "branch", "destinationBy": {"field": "a..b", "map": {"x": "d1"}}}],
            ["field"],
        ),
        ([{"topic": "t", "format": "branch", "destinationBy": {"field": "a", "map": {}}}], ["map"]),
    ],
)
def test_bad_sources_are_refused_naming_the_problem(sources: list[object], needles: list[str]) -> None:
    text = _refusal(_two(sources=sources))
    for needle in needles:
        assert needle in text, text


def test_attribution_options_reach_the_transform_config() -> None:
    d = parse_destinations(
        _one(
            installEventNames={"organic": "Free Install"},
            attributionUserKey="identity",
            inAppEvents=[
                {"name": "af_purchase", "send": "values_and_revenue", "as": "Charged"},
                {"name": "x"},
            ],
            restrictedMediaSources=["  Facebook Ads "],
            attributionProfile=True,
        )
    ).destinations[0]
    options = d.transform_config().attribution
    assert (options.organic_install, options.inorganic_install) == ("Free Install", "Inorganic Install")
    assert options.user_key == "identity"
    assert [(e.name, e.send, e.as_name) for e in options.in_app_events] == [
        ("af_purchase", "values_and_revenue", "Charged"),
        ("x", "values", None),
    ]
    assert options.restricted_media_sources == frozenset({"facebook ads"})
    assert options.first_touch_profile is True


@pytest.mark.parametrize(
    ("options", "needles"),
    [
        ({"inAppEvents": [{"name": "af_purchase", "as": "Charged"}]}, ["Charged", "values_and_revenue"]),
        (
            {"inAppEvents": [{"name": "af_purchase", "send": "values", "as": "Charged"}]},
            ["values_and_revenue"],
        ),
        ({"inAppEvents": [{"name": "e", "as": "UTM Visited"}]}, ["UTM Visited", "system event"]),
        ({"inAppEvents": [{"name": "e", "send": "all"}]}, ["send"]),
        ({"inAppEvents": [{"name": ""}]}, ["name"]),
        ({"installEventNames": {"organic": "UTM Visited"}}, ["UTM Visited", "system event"]),
        ({"installEventNames": {"inorganic": "App Launched"}}, ["App Launched", "system event"]),
        ({"installEventNames": {"organic": ""}}, ["organic"]),
        ({"installEventNames": {"paid": "x"}}, ["paid"]),
        ({"attributionUserKey": "email"}, ["attributionUserKey"]),
    ],
)
def test_bad_attribution_options_are_refused(options: dict[str, object], needles: list[str]) -> None:
    text = _refusal(_one(**options))
    assert "destinations[0]" in text
    for needle in needles:
        assert needle in text, text


def test_check_config_reports_a_bad_sources_section(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        "destinations:\n  - id: d1\n    accountId: ACC-1\n    passcode: pw-1\n"
        "sources:\n  - topic: af\n    format: appsflyer\n    destination: d9\n"
    )
    result = CliRunner().invoke(main, ["check-config", "--destinations", str(path)])
    assert result.exit_code == 2, result.output
    assert "'d9'" in result.output
    assert "pw-1" not in result.output


@pytest.mark.parametrize(
    ("partner", "needles"),
    [
        ({"name": "acme"}, ["attributionPartner", "accountToken"]),
        ({"accountToken": "tok-123456"}, ["attributionPartner", "name"]),
        ({"name": " ", "accountToken": "tok-123456"}, ["attributionPartner", "name"]),
        ({"name": "acme", "accountToken": "  "}, ["accountToken", "blank"]),
        ({"name": "acme", "accountToken": "tok-123456", "key": "x"}, ["key"]),
    ],
)
def test_attribution_partner_needs_a_name_and_an_account_token(
    partner: dict[str, object], needles: list[str]
) -> None:
    text = _refusal(_one(attributionPartner=partner))
    for needle in needles:
        assert needle in text, text
    assert "tok-123456" not in text


def test_attribution_partner_reaches_the_transform_and_the_target() -> None:
    from consumer.route import Router

    doc = parse_destinations(_one(attributionPartner={"name": "acme", "accountToken": "tok-123456"}))
    (d,) = doc.destinations
    assert d.transform_config().attribution.partner_name == "acme"
    target = Router.from_destinations(doc, base_url="http://127.0.0.1:1").routes["d1"].target
    assert target.attribution_url == "http://127.0.0.1:1/attribution"
    assert target.account_token is not None
    assert target.account_token.get_secret_value() == "tok-123456"
    assert "tok-123456" not in repr(target) + repr(d)
    # A validating dry run never sends to /attribution (it has no dry-run flag).
    validating = Router.from_destinations(doc, base_url="http://127.0.0.1:1", validate_only=True)
    route = validating.routes["d1"]
    assert route.target.attribution_url is None
    assert route.config.attribution.partner_name is None
    plain = parse_destinations(_one()).destinations[0]
    assert plain.transform_config().attribution.partner_name is None


def _laughs(levels: int) -> str:
    """A "billion laughs" file: each anchor a list of nine aliases of the one before."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    body = "\n".join(lines)
    return (
        f"{body}\ndestinations:\n  - id: d1\n    accountId: ACC-1\n    passcode: pw-long-1\n"
        f"    blacklistedEvents: *l{levels - 1}\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(_laughs(9), id="billion-laughs"),
        pytest.param(
            "x: &x [*x]\ndestinations:\n  - {id: d1, accountId: A, passcode: pw-long-1}\n",
            id="self-reference",
        ),
    ],
)
def test_a_yaml_alias_bomb_is_refused_before_anything_walks_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"aliases expand to more than 1,000,000 values"):
        load_destinations(path)


def test_modest_yaml_aliases_still_load(tmp_path: Path) -> None:
    path = tmp_path / "aliases.yaml"
    path.write_text(
        "destinations:\n"
        "  - {id: d1, accountId: A, passcode: pw-long-1, eventFilteringOption: whitelistedEvents,"
        " whitelistedEvents: &events [{eventName: Order Completed}, {eventName: Signed Up}]}\n"
        "  - {id: d2, accountId: B, passcode: pw-long-2, eventFilteringOption: whitelistedEvents,"
        " whitelistedEvents: *events}\n"
    )
    loaded = load_destinations(path)
    assert [d.whitelisted_events for d in loaded.destinations] == [("Order Completed", "Signed Up")] * 2

"""`clevertap-consumer transform`: JSON lines in, requests (or errors) out, never a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from consumer.cli import main

PASSCODE = "s3cr3t-passcode"
DEST = {"accountId": "ACC-1", "passcode": PASSCODE, "region": "in1", "trackAnonymous": True}
MOBILE_IDENTIFY = {
    "type": "identify",
    "userId": "u",
    "anonymousId": "anon",
    "context": {"os": {"name": "Android"}, "device": {"token": "tok"}},
}


def run(lines: list[Any], *args: str) -> tuple[int, list[dict[str, Any]]]:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    result = CliRunner().invoke(main, ["transform", *args], input=text)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, [json.loads(out) for out in result.stdout.splitlines()]


def line(message: Any, **config: Any) -> dict[str, Any]:
    return {"message": message, "destination": {**DEST, **config}}


def track(event: str = "Played", **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "userId": "u", **fields}


def test_one_output_line_per_input_line_with_one_request_per_record() -> None:
    code, out = run(
        [line(MOBILE_IDENTIFY, enableObjectIdMapping=True), line({"type": "group"}), line(track())],
        "--profile",
        "rudderstack",
    )
    assert code == 0
    assert len(out) == 3
    profile, token = out[0]["requests"]
    assert profile == {
        "method": "POST",
        "url": "https://in1.api.clevertap.com/1/upload",
        "headers": {
            "X-CleverTap-Account-Id": "ACC-1",
            "X-CleverTap-Passcode": PASSCODE,
            "Content-Type": "application/json",
        },
        "body": {"d": [{"type": "profile", "profileData": {"identity": "u"}, "objectId": "anon"}]},
    }
    assert token["body"] == {
        "d": [{"type": "token", "tokenData": {"id": "tok", "type": "fcm"}, "objectId": "anon"}]
    }
    assert out[1] == {
        "error": {"status": 400, "message": "Message type not supported", "reason": "unsupported_type"}
    }
    assert out[2]["requests"][0]["body"]["d"][0]["evtName"] == "Played"


def test_default_profile_lines_report_fixes() -> None:
    _, out = run([line(track(properties={"k" * 130: 1}, timestamp="2021-03-10T11:59:22Z"))])
    assert out[0]["requests"][0]["body"]["d"][0]["ts"] == 1615377562
    assert out[0]["fixes"] == [{"kind": "key_too_long", "field": "k" * 64 + "…", "action": "dropped"}]


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected"),
        (json.dumps({"message": track()}), "expected"),
        (json.dumps({"message": track(), "destination": "x"}), "must be a JSON object"),
    ],
)
def test_malformed_lines_get_a_400_error_and_the_next_line_still_runs(raw: str, needle: str) -> None:
    code, out = run([raw, line(track())])
    assert code == 0
    assert out[0]["error"]["status"] == 400
    assert needle in out[0]["error"]["message"]
    assert "requests" in out[1]


def test_a_message_that_is_not_an_object_is_rejected() -> None:
    _, out = run([{"message": [1], "destination": DEST}])
    assert out[0]["error"] == {
        "status": 400,
        "message": "message is not a JSON object",
        "reason": "not_an_object",
    }


def test_bad_destination_config_names_the_field_but_never_the_passcode() -> None:
    _, out = run([{"message": track(), "destination": {"passcode": PASSCODE}}])
    message = out[0]["error"]["message"]
    assert "accountId" in message
    assert PASSCODE not in json.dumps(out)


def test_unknown_region_is_an_error_in_the_default_profile_only() -> None:
    _, out = run([line(track(), region="eu2")])
    assert out[0]["error"]["status"] == 400
    assert "'eu2'" in out[0]["error"]["message"]
    assert PASSCODE not in out[0]["error"]["message"]
    _, out = run([line(track(), region="eu2")], "--profile", "rudderstack")
    assert out[0]["requests"][0]["url"] == "https://eu2.api.clevertap.com/1/upload"


def test_region_aliases_resolve_in_the_default_profile() -> None:
    _, out = run([line(track(), region="EU"), line(track(), region="none")])
    assert [o["requests"][0]["url"] for o in out] == ["https://api.clevertap.com/1/upload"] * 2


def test_filtered_events_have_their_own_line() -> None:
    deny = {"eventFilteringOption": "blacklistedEvents", "blacklistedEvents": [{"eventName": "Played"}]}
    _, out = run([line(track(), **deny), line(track("Other"), **deny)])
    assert out[0] == {"filtered": {"event": "Played"}}
    assert "requests" in out[1]


def test_blank_lines_are_skipped() -> None:
    _, out = run(["", line(track()), "   "])
    assert len(out) == 1


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_destination_config_file_with_bare_messages(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"dest{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(DEST))
    else:
        path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in DEST.items()))
    _, out = run([track(), {"type": "group"}], "--destination-config", str(path))
    assert out[0]["requests"][0]["headers"]["X-CleverTap-Account-Id"] == "ACC-1"
    assert out[1]["error"]["reason"] == "unsupported_type"


def test_destination_config_file_in_destinations_file_format(tmp_path: Path) -> None:
    path = tmp_path / "destinations.yaml"
    path.write_text(
        "destinations:\n  - id: d1\n    accountId: ACC-9\n    passcodeEnv: CT_PASSCODE\n    region: us1\n"
        "    profile: rudderstack\n"
    )
    text = json.dumps({"type": "page", "userId": "u", "name": "A&B"}) + "\n"
    result = CliRunner().invoke(
        main, ["transform", "--destination-config", str(path)], input=text, env={"CT_PASSCODE": "pw"}
    )
    request = json.loads(result.stdout)["requests"][0]
    assert request["url"] == "https://us1.api.clevertap.com/1/upload"
    assert request["headers"]["X-CleverTap-Passcode"] == "pw"
    assert request["body"]["d"][0]["evtName"] == "Web Page Viewed: A&amp;B"  # the file's profile applies


def test_an_unusable_destination_config_file_fails_every_line(tmp_path: Path) -> None:
    path = tmp_path / "dest.json"
    path.write_text(json.dumps({"accountId": "A", "passcode": PASSCODE, "region": "mars"}))
    code, out = run([track(), track()], "--destination-config", str(path))
    assert code == 0
    assert [o["error"]["status"] for o in out] == [400, 400]
    assert "'mars'" in out[0]["error"]["message"]


def test_rudderstack_batches_keep_an_events_records_together_and_list_errors_last() -> None:
    events = [line(track(f"E{i}"), enableObjectIdMapping=True) for i in range(999)]
    events.append(line(MOBILE_IDENTIFY, enableObjectIdMapping=True))  # 2 records at position 999
    events.append(line({"type": "group"}, enableObjectIdMapping=True))
    events.append(line(track("Last"), enableObjectIdMapping=True))
    _, out = run(events, "--profile", "rudderstack", "--batch")
    first, second, error = out
    assert len(first["batch"]["body"]["d"]) == 999
    assert first["inputs"] == list(range(999))
    assert [r["type"] for r in second["batch"]["body"]["d"]] == ["profile", "token", "event"]
    assert second["inputs"] == [999, 1001]
    assert second["batch"]["headers"]["X-CleverTap-Passcode"] == PASSCODE
    assert error == {
        "error": {"status": 400, "message": "Message type not supported", "reason": "unsupported_type"},
        "inputs": [1000],
    }


def test_rudderstack_batches_are_per_account() -> None:
    _, out = run(
        [line(track("A")), line(track("B"), accountId="ACC-2"), line(track("C"))],
        "--profile",
        "rudderstack",
        "--batch",
    )
    assert [(o["batch"]["headers"]["X-CleverTap-Account-Id"], o["inputs"]) for o in out] == [
        ("ACC-1", [0, 2]),
        ("ACC-2", [1]),
    ]


def test_default_batches_put_tokens_apart_at_most_100_per_request() -> None:
    events = [line({**MOBILE_IDENTIFY, "userId": f"u{i}"}, enableObjectIdMapping=True) for i in range(150)]
    events.append(
        line(track("Skipped"), eventFilteringOption="whitelistedEvents", whitelistedEvents=["Other"])
    )
    _, out = run(events, "--batch")
    batches = [o for o in out if "batch" in o]
    kinds = [{r["type"] for r in b["batch"]["body"]["d"]} for b in batches]
    sizes = [len(b["batch"]["body"]["d"]) for b in batches]
    assert sorted(zip(map(sorted, kinds), sizes, strict=True)) == [
        (["profile"], 150),
        (["token"], 50),
        (["token"], 100),
    ]
    assert out[-1] == {"filtered": {"event": "Skipped"}, "inputs": [150]}


def test_the_passcode_stays_out_of_reprs() -> None:
    from consumer.cli.transform import _default_sink

    sink = _default_sink(DEST)
    assert PASSCODE in sink.headers.values()
    assert PASSCODE not in repr(sink)


# --format: partner payloads, as a `sources:` format reads them ------------------------------------

AF_DEST = {
    **DEST,
    "inAppEvents": [{"name": "af_purchase", "send": "values_and_revenue", "as": "Charged"}],
    "restrictedMediaSources": ["Restricted_Net"],
}
AF_INSTALL = {
    "event_name": "install",
    "install_time": "2026-11-30 08:15:00.000",
    "media_source": "googleadwords_int",
    "campaign": "winter",
    "customer_user_id": "__ct-1",
}
AF_PURCHASE = {
    "event_name": "af_purchase",
    "event_time": "2026-11-30 09:00:00.000",
    "event_value": json.dumps({"af_content_id": "sku-1"}),
    "event_revenue": "12.5",
    "customer_user_id": "__ct-1",
}


def test_format_appsflyer_prints_requests_and_filtered_reasons(tmp_path: Path) -> None:
    path = tmp_path / "dest.json"
    path.write_text(json.dumps(AF_DEST))
    payloads = [
        AF_INSTALL,
        AF_PURCHASE,
        {**AF_PURCHASE, "event_name": "af_login"},
        {**AF_INSTALL, "media_source": "restricted_net"},
        {**AF_INSTALL, "customer_user_id": ""},
        [1],
    ]
    code, out = run(payloads, "--destination-config", str(path), "--format", "appsflyer")
    assert code == 0
    (install,) = out[0]["requests"]
    assert install["url"] == "https://in1.api.clevertap.com/1/upload"
    assert install["body"]["d"] == [
        {
            "type": "event",
            "evtName": "Inorganic Install",
            "evtData": {"utm_source": "googleadwords_int", "utm_campaign": "winter", "partner": "appsflyer"},
            "objectId": "__ct-1",
            "ts": 1796026500,
        }
    ]
    (charged,) = out[1]["requests"][0]["body"]["d"]
    assert (charged["evtName"], charged["evtData"]) == ("Charged", {"af_content_id": "sku-1", "Amount": 12.5})
    assert out[2:5] == [
        {"filtered": {"event": "af_login", "reason": "event_not_selected"}},
        {"filtered": {"event": "install", "reason": "restricted_media_source"}},
        {"filtered": {"event": "install", "reason": "missing_clevertap_id"}},
    ]
    assert out[5]["error"]["status"] == 400


@pytest.mark.parametrize(
    ("fmt", "payload", "name"),
    [
        (
            "branch",
            {
                "name": "INSTALL",
                "timestamp": 1764490500000,
                "custom_data": {"$clevertap_attribution_id": "c"},
            },
            "Organic Install",
        ),
        (
            "adjust",
            {"activity_kind": "install", "network_name": "Meta", "clevertapId": "c"},
            "Inorganic Install",
        ),
        ("rudderstack", {"type": "track", "event": "Install Attributed", "userId": "u"}, "Organic Install"),
    ],
)
def test_format_with_per_line_destinations(fmt: str, payload: dict[str, Any], name: str) -> None:
    _, out = run([line(payload)], "--format", fmt)
    (request,) = out[0]["requests"]
    assert request["body"]["d"][0]["evtName"] == name


def test_format_batch_lists_filtered_reasons() -> None:
    lines = [line(AF_INSTALL, **AF_DEST), line({**AF_PURCHASE, "event_name": "af_login"}, **AF_DEST)]
    _, out = run(lines, "--format", "appsflyer", "--batch")
    assert out[0]["inputs"] == [0]
    assert out[1] == {"filtered": {"event": "af_login", "reason": "event_not_selected"}, "inputs": [1]}


def test_format_partner_payloads_keep_the_attribution_options_under_the_rudderstack_profile() -> None:
    # The service gives a partner topic the destination's attribution options whatever its profile.
    _, out = run([line(AF_PURCHASE, **AF_DEST)], "--format", "appsflyer", "--profile", "rudderstack")
    (charged,) = out[0]["requests"][0]["body"]["d"]
    assert charged["evtName"] == "Charged"


def test_an_unknown_format_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["transform", "--format", "kochava"], input="")
    assert result.exit_code == 2
    assert "kochava" in result.output


def test_format_appsflyer_prints_a_partner_install_as_an_attribution_request(tmp_path: Path) -> None:
    path = tmp_path / "dest.json"
    partner = {"name": "acme", "accountToken": "tok-SECRET-42"}
    path.write_text(json.dumps({**AF_DEST, "attributionPartner": partner}))
    code, out = run([AF_INSTALL], "--destination-config", str(path), "--format", "appsflyer")
    assert code == 0
    (request,) = out[0]["requests"]
    assert (request["method"], request["url"]) == ("GET", "https://in1.api.clevertap.com/attribution")
    assert request["params"]["event_type"] == "inorganic_install"
    assert request["params"]["device_identifier"] == "__ct-1"
    assert "tok-SECRET-42" not in json.dumps(out)

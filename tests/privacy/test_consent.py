"""The integrations object and consent: which events may reach CleverTap at all."""

from __future__ import annotations

from typing import Any

import pytest

from consumer.consent import CONSENT_DENIED, INTEGRATIONS_DISABLED, OPEN, Gate, gate_from_config, withheld
from consumer.destinations import parse_destinations
from tests.privacy.rudderstack_config import full_config


def _track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Signed Up", "userId": "u1", **fields}


@pytest.mark.parametrize(
    ("integrations", "reason"),
    [
        (None, None),
        ({}, None),
        ({"All": True}, None),
        ({"All": False}, INTEGRATIONS_DISABLED),
        ({"All": False, "CleverTap": True}, None),
        ({"All": False, "CLEVERTAP": True}, None),
        ({"All": False, "clevertap": {"deviceTokenType": "fcm"}}, None),  # options: enabled
        ({"All": False, "Clevertap": "yes"}, INTEGRATIONS_DISABLED),  # not a boolean: no say
        ({"CleverTap": False}, INTEGRATIONS_DISABLED),
        ({"All": True, "cleverTap": False}, INTEGRATIONS_DISABLED),
        ({"All": True, "CleverTap": True, "CLEVERTAP": False}, INTEGRATIONS_DISABLED),  # false wins
        ({"All": False, "Amplitude": True}, INTEGRATIONS_DISABLED),
        ({"All": "false"}, None),  # only a boolean false disables
        ({"Amplitude": False}, None),
    ],
)
def test_integrations_object(integrations: Any, reason: str | None) -> None:
    message = _track() if integrations is None else _track(integrations=integrations)
    assert withheld(message, OPEN) == reason


def _cm(**cm: Any) -> dict[str, Any]:
    return _track(context={"consentManagement": cm})


def _gate(*blocks: dict[str, Any], platform: str = "cloud") -> Gate:
    return gate_from_config({platform: list(blocks)})


def _block(provider: str, *ids: str, strategy: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"provider": provider, "consents": [{"consent": i} for i in ids]}
    if strategy is not None:
        block["resolutionStrategy"] = strategy
    return block


def test_one_trust_withholds_when_any_required_consent_is_denied() -> None:
    gate = _gate(_block("oneTrust", "C0002", "C0004"))
    assert withheld(_cm(provider="oneTrust", deniedConsentIds=["C0004"]), gate) == CONSENT_DENIED
    assert withheld(_cm(provider="oneTrust", deniedConsentIds=["C0003"]), gate) is None
    assert withheld(_cm(provider="oneTrust", deniedConsentIds=[]), gate) is None
    assert withheld(_cm(provider="oneTrust", allowedConsentIds=["C0001"]), gate) is None
    # another provider's block does not apply to this one
    assert withheld(_cm(provider="ketch", deniedConsentIds=["C0004"]), gate) is None


def test_custom_and_or_resolution_strategies() -> None:
    both = _gate(_block("custom", "ads", "email", strategy="and"))
    either = _gate(_block("custom", "ads", "email", strategy="or"))
    one_denied = _cm(provider="custom", deniedConsentIds=["ads"])
    all_denied = _cm(provider="custom", deniedConsentIds=["email", "ads", "x"])
    assert withheld(one_denied, both) == CONSENT_DENIED
    assert withheld(one_denied, either) is None
    assert withheld(all_denied, either) == CONSENT_DENIED
    # a custom block without its own strategy takes the event's, else "and"
    unset = _gate(_block("custom", "ads", "email"))
    assert withheld(one_denied, unset) == CONSENT_DENIED
    assert withheld(_cm(provider="custom", deniedConsentIds=["ads"], resolutionStrategy="or"), unset) is None


def test_named_providers_ignore_a_resolution_strategy_of_or() -> None:
    gate = _gate(_block("ketch", "p1", "p2", strategy="or"))
    assert withheld(_cm(provider="ketch", deniedConsentIds=["p1"], resolutionStrategy="or"), gate) == (
        CONSENT_DENIED
    )


def test_every_source_types_block_applies() -> None:
    gate = gate_from_config(
        {
            "web": [_block("oneTrust", "C1")],
            "android": [_block("oneTrust", "C2")],
        }
    )
    assert withheld(_cm(provider="oneTrust", deniedConsentIds=["C2"]), gate) == CONSENT_DENIED
    assert withheld(_cm(provider="oneTrust", deniedConsentIds=["C1"]), gate) == CONSENT_DENIED
    assert withheld(_cm(provider="oneTrust", deniedConsentIds=["C3"]), gate) is None


def test_legacy_one_trust_and_ketch_lists() -> None:
    gate = gate_from_config(
        None,
        {"web": [{"oneTrustCookieCategory": "Marketing"}, {"oneTrustCookieCategory": ""}]},
        {"android": [{"purpose": "analytics"}]},
    )
    assert withheld(_cm(deniedConsentIds=["Marketing"]), gate) == CONSENT_DENIED  # no provider: OneTrust
    assert withheld(_cm(provider="oneTrust", deniedConsentIds=["Marketing"]), gate) == CONSENT_DENIED
    assert withheld(_cm(provider="ketch", deniedConsentIds=["analytics"]), gate) == CONSENT_DENIED
    assert withheld(_cm(provider="ketch", deniedConsentIds=["Marketing"]), gate) is None
    assert withheld(_cm(provider="custom", deniedConsentIds=["Marketing"]), gate) is None


def test_empty_dashboard_entries_require_nothing() -> None:
    gate = gate_from_config({"web": [{"provider": "oneTrust", "consents": [{"consent": ""}]}], "ios": []})
    assert not gate
    assert withheld(_cm(provider="oneTrust", deniedConsentIds=[""]), gate) is None


@pytest.mark.parametrize(
    "context",
    [None, "text", {"consentManagement": "x"}, {"consentManagement": {"deniedConsentIds": "marketing"}}],
)
def test_odd_consent_shapes_withhold_nothing(context: Any) -> None:
    gate = _gate(_block("custom", "marketing"))
    assert withheld(_track(context=context), gate) is None


def test_a_pasted_rudderstack_config_brings_its_consent_rules() -> None:
    d = parse_destinations({"destinations": [{"id": "d1", **full_config()}]}).destinations[0]
    gate = d.consent_gate()
    message = _cm(provider="custom", deniedConsentIds=["analytics"])
    assert withheld(message, gate) == CONSENT_DENIED
    assert withheld(_cm(provider="custom", deniedConsentIds=["other"]), gate) is None

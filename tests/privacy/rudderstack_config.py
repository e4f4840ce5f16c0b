"""A CleverTap destination `Config` as RudderStack's dashboard saves it: every key of its
destination definition (rudder-integrations-config, clevertap/schema.json), with the values
the UI writes for untouched fields (region `none`, `[{"eventName": ""}]`, per-platform objects).
Written for these tests from the schema's key list; not copied from RudderStack."""

from __future__ import annotations

from typing import Any


def full_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "accountId": "ACC-ONE",
        "passcode": "pass-one",
        "accountToken": "tok-secret-123",
        "region": "none",
        "trackAnonymous": False,
        "enableObjectIdMapping": False,
        "eventFilteringOption": "disable",
        "whitelistedEvents": [{"eventName": ""}],
        "blacklistedEvents": [{"eventName": ""}],
        "useNativeSDK": {"web": False, "android": False, "ios": False, "reactnative": False},
        "connectionMode": {"web": "cloud", "android": "device", "ios": "cloud", "cloud": "cloud"},
        "consentManagement": {
            "web": [{"provider": "oneTrust", "consents": [{"consent": ""}], "resolutionStrategy": ""}],
            "cloud": [
                {
                    "provider": "custom",
                    "resolutionStrategy": "and",
                    "consents": [{"consent": "marketing"}, {"consent": "analytics"}],
                }
            ],
            "android": [],
        },
        "oneTrustCookieCategories": {"web": [{"oneTrustCookieCategory": ""}]},
        "ketchConsentPurposes": {"web": [{"purpose": ""}]},
    }
    config.update(overrides)
    return config

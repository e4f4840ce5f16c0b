"""Whether an event may go to a destination at all: the `integrations` object and consent.

RudderStack's server applies both before its CleverTap transformer ever sees an event, so a
service that replaces the pair must apply them too, in both profiles: an event the user's
consent or the producer's `integrations` object withholds from CleverTap is skipped on purpose
(counted, committed, never dead-lettered), exactly as RudderStack drops it.

The rules, in RudderStack's documented semantics:

* `integrations`: a key that names CleverTap, compared without case (`CleverTap`, `clevertap`,
  `CLEVERTAP`, …), decides when it is a boolean; an object there (per-event CleverTap options
  such as `deviceTokenType`) counts as enabled. Otherwise `"All": false` withholds the event
  (`All` defaults to true). Should two spellings disagree, `false` wins.
* consent: only `context.consentManagement.deniedConsentIds` is read (no denied ids, nothing
  to withhold). The destination's `consentManagement` block for the event's `provider` applies:
  `and` (OneTrust, Ketch, iubenda, and custom by default) withholds the event when *any* of
  the block's consent ids is denied, `or` (custom only) when *all* of them are. A custom block
  without its own `resolutionStrategy` takes the event's. Without a block for that provider,
  the older `oneTrustCookieCategories` / `ketchConsentPurposes` lists apply (OneTrust's also
  when the event names no provider), with `and` semantics.
* RudderStack stores these per source type (web, android, cloud, …) and picks the source's
  block; this service does not know which SDK produced an event, so every source type's block
  applies and the event is withheld when any of them withholds it. A configured consent
  requirement is therefore never bypassed.

Pure: no I/O, no clock; the destination's part is resolved once at start-up into a `Gate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

INTEGRATIONS_DISABLED: Final = "integrations_disabled"
CONSENT_DENIED: Final = "consent_denied"
GATE_REASONS: Final = (INTEGRATIONS_DISABLED, CONSENT_DENIED)

Strategy = Literal["and", "or"]
_CLEVERTAP: Final = "clevertap"
_LEGACY_ONE_TRUST: Final = "oneTrust"
_LEGACY_KETCH: Final = "ketch"


@dataclass(frozen=True, slots=True)
class ConsentRule:
    """One consent block of one source type: ids the destination needs, and how to combine them."""

    provider: str
    consents: frozenset[str]
    strategy: Strategy | None = None  # custom only; None: the event's, else "and"


@dataclass(frozen=True, slots=True)
class Gate:
    """A destination's consent requirements, resolved from its config at start-up."""

    rules: tuple[ConsentRule, ...] = ()
    legacy: tuple[ConsentRule, ...] = ()  # oneTrustCookieCategories / ketchConsentPurposes

    def __bool__(self) -> bool:
        return bool(self.rules or self.legacy)


OPEN: Final = Gate()


def _denied_by(rule: ConsentRule, denied: frozenset[str], event_strategy: Any) -> bool:
    strategy = rule.strategy
    if strategy is None:
        strategy = "or" if rule.provider == "custom" and event_strategy == "or" else "and"
    if strategy == "or":
        return rule.consents <= denied
    return not rule.consents.isdisjoint(denied)


def _integrations_disabled(integrations: dict[str, Any]) -> bool:
    enabled = False
    for key, value in integrations.items():
        if type(key) is str and key.lower() == _CLEVERTAP:
            if value is False:
                return True
            if value is True or type(value) is dict:
                enabled = True
    return not enabled and integrations.get("All") is False


def _consent_denied(cm: dict[str, Any], gate: Gate) -> bool:
    raw = cm.get("deniedConsentIds")
    if type(raw) is not list or not raw:
        return False
    denied = frozenset(v for v in raw if type(v) is str)
    provider = cm.get("provider")
    strategy = cm.get("resolutionStrategy")
    matched = [r for r in gate.rules if r.provider == provider]
    if matched:
        return any(_denied_by(r, denied, strategy) for r in matched)
    legacy = [
        r
        for r in gate.legacy
        if r.provider == provider or (r.provider == _LEGACY_ONE_TRUST and provider in (None, ""))
    ]
    return any(_denied_by(r, denied, strategy) for r in legacy)


def withheld(message: Mapping[str, Any], gate: Gate) -> str | None:
    """The reason this event must not reach the destination, or None to let it through."""
    integrations = message.get("integrations")
    if type(integrations) is dict and integrations and _integrations_disabled(integrations):
        return INTEGRATIONS_DISABLED
    if gate:
        context = message.get("context")
        cm = context.get("consentManagement") if type(context) is dict else None
        if type(cm) is dict and _consent_denied(cm, gate):
            return CONSENT_DENIED
    return None


# ---------------------------------------------------------------------------------------------
# From RudderStack's destination config (already validated for shape by `destinations`)


def _ids(items: Iterable[Any], key: str) -> frozenset[str]:
    """Ids from dashboard list items such as `{"consent": "C0001"}`; empty items are skipped."""
    out = set()
    for item in items:
        value = item.get(key) if isinstance(item, Mapping) else item
        if isinstance(value, str) and value.strip():
            out.add(value.strip())
    return frozenset(out)


def _per_platform(value: Any) -> Iterable[Any]:
    """The lists of a per-source-type object (`{"web": [...], "cloud": [...]}`), or a bare list."""
    if isinstance(value, Mapping):
        return [v for v in value.values() if isinstance(v, (list, tuple))]
    if isinstance(value, (list, tuple)):
        return [value]
    return []


def gate_from_config(
    consent_management: Any, one_trust_categories: Any = None, ketch_purposes: Any = None
) -> Gate:
    """A `Gate` from RudderStack's `consentManagement`, `oneTrustCookieCategories` and
    `ketchConsentPurposes` values, as the dashboard saves them."""
    rules = []
    for blocks in _per_platform(consent_management):
        for block in blocks:
            if not isinstance(block, Mapping):
                continue
            consents = _ids(block.get("consents") or (), "consent")
            provider = block.get("provider")
            if not consents or not isinstance(provider, str) or not provider:
                continue
            strategy = block.get("resolutionStrategy")
            rules.append(
                ConsentRule(
                    provider,
                    consents,
                    strategy if provider == "custom" and strategy in ("and", "or") else None,
                )
            )
    legacy = []
    for provider, value, key in (
        (_LEGACY_ONE_TRUST, one_trust_categories, "oneTrustCookieCategory"),
        (_LEGACY_KETCH, ketch_purposes, "purpose"),
    ):
        for items in _per_platform(value):
            ids = _ids(items, key)
            if ids:
                legacy.append(ConsentRule(provider, ids, "and"))
    return Gate(tuple(rules), tuple(legacy))

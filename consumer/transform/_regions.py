"""CleverTap region → API host.

CleverTap keeps each account in one data centre and answers a request sent to the wrong one with
401, which looks like a bad passcode. The default profile therefore refuses unknown regions when
the configuration loads; the rudderstack profile keeps RudderStack's rule (any string becomes the
subdomain) so that its output stays identical.
"""

from __future__ import annotations

from ._types import Profile

DEFAULT_HOST = "api.clevertap.com"

# Codes as CleverTap's docs spell them, and the labels attribution partners show in their UIs
# (EU, IN, US, SG, SK, ID, UAE). EU is CleverTap's default data centre and has no subdomain.
_HOSTS: dict[str, str] = {
    "eu1": DEFAULT_HOST,
    "in1": "in1.api.clevertap.com",
    "us1": "us1.api.clevertap.com",
    "sg1": "sg1.api.clevertap.com",
    "sk1": "sk1.api.clevertap.com",
    "aps3": "aps3.api.clevertap.com",
    "mec1": "mec1.api.clevertap.com",
}
_ALIASES: dict[str, str] = {
    "eu": "eu1",
    "in": "in1",
    "us": "us1",
    "sg": "sg1",
    "sk": "sk1",
    "id": "aps3",
    "uae": "mec1",
}
_UNSET = {"", "none"}

REGION_CHOICES = tuple(sorted(_HOSTS)) + tuple(sorted(a.upper() for a in _ALIASES))


def host_for_region(region: str | None, profile: Profile = Profile.DEFAULT) -> str:
    """Return the API host for a destination's `region` setting.

    Raises ValueError (default profile only) when the value names no CleverTap region.
    """
    if profile is Profile.RUDDERSTACK:
        return f"{region}.api.clevertap.com" if region and region != "none" else DEFAULT_HOST
    key = (region or "").strip().lower()
    if key in _UNSET:
        return DEFAULT_HOST
    host = _HOSTS.get(_ALIASES.get(key, key))
    if host is None:
        raise ValueError(f"unknown CleverTap region {region!r}; expected one of {', '.join(REGION_CHOICES)}")
    return host

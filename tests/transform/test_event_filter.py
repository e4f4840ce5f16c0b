"""Per-destination allow/deny lists for track events, in both profiles."""

from __future__ import annotations

from typing import Any

import pytest

from consumer.transform import Accepted, EventFilter, Filtered, Profile, Rejected, TransformConfig, transform


def config(event_filter: EventFilter, names: set[str], profile: Profile) -> TransformConfig:
    return TransformConfig(
        account_id="ACC",
        track_anonymous=True,
        profile=profile,
        event_filter=event_filter,
        event_names=frozenset(names),
    )


def track(event: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "userId": "u"}


@pytest.mark.parametrize("profile", list(Profile))
def test_allow_list_passes_only_listed_track_events(profile: Profile) -> None:
    allow = config(EventFilter.ALLOW, {"Signed Up", "Order Completed"}, profile)
    assert isinstance(transform(track("Signed Up"), allow), Accepted)
    assert isinstance(transform(track("Order Completed"), allow), Accepted)
    assert transform(track("Video Played"), allow) == Filtered("Video Played")


@pytest.mark.parametrize("profile", list(Profile))
def test_deny_list_skips_listed_track_events(profile: Profile) -> None:
    deny = config(EventFilter.DENY, {"Video Played"}, profile)
    assert transform(track("Video Played"), deny) == Filtered("Video Played")
    assert isinstance(transform(track("Signed Up"), deny), Accepted)


def test_the_match_is_exact_and_case_sensitive_on_the_trimmed_name() -> None:
    deny = config(EventFilter.DENY, {"Video Played"}, Profile.DEFAULT)
    assert transform(track("  Video Played\t"), deny) == Filtered("Video Played")
    assert isinstance(transform(track("video played"), deny), Accepted)
    assert isinstance(transform(track("Video  Played"), deny), Accepted)


def test_numeric_event_names_match_by_their_text() -> None:
    deny = config(EventFilter.DENY, {"42"}, Profile.RUDDERSTACK)
    assert transform(track(42), deny) == Filtered("42")


@pytest.mark.parametrize("message_type", ["identify", "page", "screen", "alias"])
def test_other_message_types_always_pass(message_type: str) -> None:
    allow = config(EventFilter.ALLOW, {"Nothing"}, Profile.DEFAULT)
    message = {"type": message_type, "userId": "u", "previousId": "p", "name": "Home", "event": "Home"}
    assert isinstance(transform(message, allow), Accepted)


def test_events_without_a_name_are_rejected_rather_than_filtered() -> None:
    allow = config(EventFilter.ALLOW, {"Signed Up"}, Profile.DEFAULT)
    result = transform(track(None), allow)
    assert isinstance(result, Rejected)
    assert result.reason == "missing_event"


def test_disabled_filter_ignores_the_names() -> None:
    off = config(EventFilter.DISABLE, {"Video Played"}, Profile.DEFAULT)
    assert isinstance(transform(track("Video Played"), off), Accepted)

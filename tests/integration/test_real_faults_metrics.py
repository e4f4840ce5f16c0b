"""Real faults from the fake CleverTap through the running service move the series that the
dashboard and alerts read, and the alert rules fire on series scraped from that run."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.deliver import HTTP_ERRORS, RETRY_REASONS
from tests.integration.test_service import _events
from tests.support.alerts import alert_annotations, assert_fires
from tests.support.service import Bed, ServiceProcess, wait_for

pytestmark = pytest.mark.kafka
WATCHED = (
    "clevertap_consumer_upload_responses_total",
    "clevertap_consumer_http_request_errors_total",
    "clevertap_consumer_delivery_retries_total",
    "clevertap_consumer_auth_breaker_open",
)


def _watched(service: ServiceProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {k: v for k, v in service.metrics().items() if k[0] in WATCHED}


def test_401_429_5xx_timeouts_and_resets_move_the_series_and_fire_the_auth_alert(
    bed: Bed, promtool: Path, tmp_path: Path
) -> None:
    bed.fake.set_faults(account="ACC-ONE", refuse=True)
    bed.fake.set_faults(
        account="ACC-TWO",
        seed=3,
        status_429_rate=0.25,
        status_5xx_rate=0.25,
        timeout_rate=0.1,
        reset_rate=0.1,
    )
    service = bed.service(
        CLEVERTAP_TIMEOUT_SECONDS="1", DELIVERY_RETRY_BUDGET_SECONDS="20", BATCH_MAX_RECORDS="5"
    )
    service.wait_ready()
    before = _watched(service)
    bed.produce(_events(400, seed=21))

    def moved() -> bool:
        m = service.metric_sum
        return (
            m("clevertap_consumer_upload_responses_total", account="ACC-ONE", code="401") > 0
            and m("clevertap_consumer_upload_responses_total", account="ACC-TWO", code="429") > 0
            and m("clevertap_consumer_upload_responses_total", account="ACC-TWO", code="200") > 0
            and sum(
                m("clevertap_consumer_upload_responses_total", account="ACC-TWO", code=c)
                for c in ("500", "502", "503", "504")
            )
            > 0
            and m("clevertap_consumer_http_request_errors_total", error="timeout") > 0
            and m("clevertap_consumer_http_request_errors_total", error="reset") > 0
            and all(
                m("clevertap_consumer_delivery_retries_total", reason=r) > 0
                for r in ("throttled", "server_error", "timeout", "connection")
            )
            and m("clevertap_consumer_auth_breaker_open", account="ACC-ONE") == 1
        )

    wait_for(moved, 90, lambda: str(_watched(service)))
    after = _watched(service)
    emitted = {
        (n, dict(lbls).get("reason") or dict(lbls).get("error")) for (n, lbls), v in after.items() if v > 0
    }
    for name, value in emitted:
        if name.endswith("delivery_retries_total"):
            assert value in RETRY_REASONS, value
        if name.endswith("http_request_errors_total"):
            assert value in HTTP_ERRORS, value
    assert service.metric_sum("clevertap_consumer_auth_breaker_open", account="ACC-TWO") == 0
    assert service.terminate() == 0, service.log_tail()

    # The alert rules against exactly these scraped series: 5 minutes at the start-up values,
    # then the values after the faults.
    series = [
        {
            "series": name
            + "{"
            + ", ".join(
                f'{k}="{v}"' for k, v in (*labels, ("job", "clevertap-consumer"), ("instance", "pod-a"))
            )
            + "}",
            "values": f"{before.get((name, labels), 0.0):g}x5 {value:g}x10",
        }
        for (name, labels), value in after.items()
        if not name.endswith("_created")
    ]
    assert_fires(
        promtool,
        tmp_path,
        series,
        "ClevertapConsumerAuthFailures",
        quiet_at="4m",
        fires_at="8m",
        labels={"severity": "critical", "job": "clevertap-consumer", "account": "ACC-ONE", "code": "401"},
        expected_annotations=alert_annotations(
            "ClevertapConsumerAuthFailures", {"{{ $labels.code }}": "401", "{{ $labels.account }}": "ACC-ONE"}
        ),
    )

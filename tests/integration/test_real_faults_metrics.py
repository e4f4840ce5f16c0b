"""Real faults from the fake CleverTap through the running service move the series that the
dashboard and alerts read, and the alert rules fire on series scraped from that run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from consumer.deliver import HTTP_ERRORS, RETRY_REASONS
from tests.integration.test_service import _events
from tests.support.service import Bed, ServiceProcess, wait_for

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
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
    auth = {
        "severity": "critical",
        "job": "clevertap-consumer",
        "account": "ACC-ONE",
        "code": "401",
    }
    rules = yaml.safe_load((ROOT / "dashboards/alerts.yaml").read_text())
    alert = next(
        r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "ClevertapConsumerAuthFailures"
    )
    annotations = {
        k: v.replace("{{ $labels.code }}", "401").replace("{{ $labels.account }}", "ACC-ONE")
        for k, v in alert["annotations"].items()
    }
    test = {
        "rule_files": [str(ROOT / "dashboards/alerts.yaml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "4m", "alertname": "ClevertapConsumerAuthFailures", "exp_alerts": []},
                    {
                        "eval_time": "8m",
                        "alertname": "ClevertapConsumerAuthFailures",
                        "exp_alerts": [{"exp_labels": auth, "exp_annotations": annotations}],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "scraped_test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    run = subprocess.run(
        [str(promtool), "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr

"""start(): the pipeline's one call, from real settings and a real destinations file."""

from __future__ import annotations

import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from consumer import observability
from consumer.destinations import load_destinations
from consumer.settings import load_settings


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.captureWarnings(False)


def test_start_serves_probes_pre_creates_series_and_redacts_passcodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passcode = f"pc-{uuid.uuid4().hex}"
    env_passcode = f"pcenv-{uuid.uuid4().hex}"
    account = f"ACC-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "destinations.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "destinations": [
                    {"id": "d1", "accountId": account, "passcode": passcode, "region": "in1"},
                    {"id": "d2", "accountId": account, "passcodeEnv": "D2_PASSCODE", "region": "in1"},
                ]
            }
        )
    )
    settings = load_settings(
        kafka_bootstrap_servers="127.0.0.1:9092",
        kafka_topics="obs-events",
        destinations_file=path,
        metrics_host="127.0.0.1",
        metrics_port=0,
        log_format="json",
    )
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)  # configure_logging writes to sys.stderr

    obs = observability.start(
        settings,
        load_destinations(path),
        reasons={"transform": ["obs_reason"]},
        environ={"D2_PASSCODE": env_passcode},
    )
    try:
        base = obs.server.url
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 503
        obs.health.set_assigned(1)
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200

        text = httpx.get(f"{base}/metrics", timeout=5).text
        assert f'clevertap_consumer_upload_responses_total{{account="{account}",code="401"}} 0.0' in text
        assert f'clevertap_consumer_concurrency_limit{{account="{account}"}} 15.0' in text
        assert 'clevertap_consumer_records_transformed_total{destination="d2"} 0.0' in text
        assert 'clevertap_consumer_dlq_records_total{reason="obs_reason",stage="transform"} 0.0' in text
        assert 'clevertap_consumer_records_consumed_total{topic="obs-events"} 0.0' in text

        logging.getLogger("consumer.pipeline").error("auth failed with %s / %s", passcode, env_passcode)
    finally:
        obs.close()
    lines = [json.loads(line) for line in stderr.getvalue().splitlines()]
    assert any(line["message"] == "auth failed with *** / ***" for line in lines)
    assert passcode not in stderr.getvalue()
    assert env_passcode not in stderr.getvalue()

"""`check-config`: validate settings and the destinations file, print what the service would use."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from ._options import bootstrap_servers_option


@click.command("check-config")
@click.option(
    "--destinations",
    "destinations_file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="DESTINATIONS_FILE",
    required=True,
    help="Destinations file (JSON or YAML). Default: $DESTINATIONS_FILE.",
)
@click.option(
    "--probe",
    is_flag=True,
    help="Also check the service's settings and ask Kafka, the Schema Registry and CleverTap"
    " (each destination's passcode and region) whether they answer; nothing is written.",
)
@bootstrap_servers_option()
def check_config(destinations_file: Path, probe: bool, bootstrap_servers: str | None) -> None:
    """Validate the destinations file and print the effective configuration, secrets redacted.

    Every problem is reported, one `error:` line each on stderr, not only the first. With
    --probe, the service's settings (the environment of `run`) are validated too, and each
    check prints an `ok`/`FAIL` line on stderr: Kafka reachable and the topics there, the Schema
    Registry answering, and an empty validate-only upload (`dryRun=1`) per destination, which
    CleverTap authenticates with the passcode at the region's host (a 401 means a wrong
    passcode or region). Exits 0 when all is well, 2 when something is to fix in the
    configuration (including a rejected passcode), 1 when something did not answer.
    """
    from .. import config_check
    from ..destinations import ConfigError
    from ..settings import load_settings

    checked = config_check.check_destinations_file(destinations_file)
    problems = list(checked.problems)
    probes: list[config_check.Probe] = []
    if probe:
        overrides: dict[str, Any] = {"destinations_file": destinations_file}
        if bootstrap_servers:
            overrides["kafka_bootstrap_servers"] = bootstrap_servers
        try:
            settings = load_settings(**overrides)
        except ConfigError as exc:
            problems.append(f"{exc} (probes skipped: they need the settings)")
        else:
            probes += config_check.probe_kafka(settings)
            probes += config_check.probe_registry(settings)
            probes += config_check.probe_destinations(checked.usable, settings)
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    for p in probes:
        click.echo(p.line(), err=True)
    if checked.loaded is not None:
        shown = config_check.effective(checked.loaded.destinations)
        click.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
    sys.exit(config_check.exit_status(problems, probes))

"""`run`: the service, or its dry run."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from ._options import bootstrap_servers_option, format_option, time_value


@click.command("run")
@click.option(
    "--dry-run",
    is_flag=True,
    envvar="DRY_RUN",
    help="Read a range of the topics under a throwaway group, decode, route and transform as the"
    " service does, send nothing, commit nothing, and print a report. Also DRY_RUN=true.",
)
@click.option(
    "--validate-with-clevertap",
    is_flag=True,
    help="With --dry-run: send the batches to CleverTap with dryRun=1, which checks them"
    " (passcode, region, each record) without storing anything.",
)
@click.option(
    "--since",
    default="1h",
    show_default=True,
    callback=time_value,
    help="With --dry-run: read from this time (ISO-8601, epoch s/ms, or 30m, 2h ago) to the end.",
)
@format_option("text", "With --dry-run: the report as text or one JSON object.")
@bootstrap_servers_option()
def run(
    *,
    dry_run: bool,
    validate_with_clevertap: bool,
    since: int,
    fmt: str,
    bootstrap_servers: str | None,
) -> None:
    """Consume events from Kafka, deliver them to CleverTap, commit after delivery.

    Configured by environment variables and secret files (see README, "Configuration").
    SIGTERM drains in-flight deliveries (DRAIN_TIMEOUT_SECONDS), commits, and exits 0; a bad
    setting exits 2 with a message naming it; Kafka unreachable or failing exits 1. SIGHUP (or
    a change of the file) reloads the destinations file.

    With --dry-run, the events from --since to the end of each partition as it is at start go
    through the same decode, route and transform, under the group KAFKA_GROUP_ID.dry-run.<time>,
    which commits nothing; nothing is delivered (unless --validate-with-clevertap) and nothing
    is dead-lettered. The report on stdout counts the events by outcome, the dead-letter and
    filter reasons, the transform's fixes and the CleverTap records per destination, with a few
    sample records of each kind. Exits 0 when the range was read (whatever the outcomes).
    """
    from ..service import Replay, run_service

    if validate_with_clevertap and not dry_run:
        raise click.UsageError("--validate-with-clevertap needs --dry-run")
    overrides: dict[str, Any] = {"kafka_bootstrap_servers": bootstrap_servers} if bootstrap_servers else {}
    if not dry_run:
        sys.exit(run_service(**overrides))

    import os

    import orjson

    from ..dry_run import DryRunReport

    group = (
        f"{os.environ.get('KAFKA_GROUP_ID', 'clevertap-consumer')}.dry-run.{time.strftime('%Y%m%dT%H%M%S')}"
    )
    report = DryRunReport(validated=validate_with_clevertap)
    # Port 0: a dry run beside the running service (kubectl exec) must not take its port.
    status = run_service(Replay(since), group_id=group, dry_run=report, metrics_port=0, **overrides)
    report.complete()
    if status == 0 or report.outcomes["consumed"]:  # interrupted (Ctrl-C): report what was read
        text = (
            orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2).decode()
            if fmt == "json"
            else report.text()
        )
        click.echo(text)
    sys.exit(status)

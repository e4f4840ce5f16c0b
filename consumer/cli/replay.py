"""`replay`: deliver a time range of the topics again."""

from __future__ import annotations

import sys
import time

import click

from ._options import time_value


@click.command("replay")
@click.option(
    "--since",
    required=True,
    callback=time_value,
    help="Start: ISO-8601, epoch s/ms, or a duration ago (2h, 7d).",
)
@click.option(
    "--until",
    default=None,
    callback=time_value,
    help="End (default: the end of each partition as it is now).",
)
@click.option(
    "--destination",
    "destinations",
    multiple=True,
    help="Deliver only events routed to this destination id (repeatable). Others are skipped.",
)
@click.option(
    "--group",
    default=None,
    help="Consumer group for the replay's own offsets (default: KAFKA_GROUP_ID + '.replay.' + a timestamp).",
)
def replay(since: int, until: int | None, destinations: tuple[str, ...], group: str | None) -> None:
    """Deliver the events of a time range again, e.g. to backfill CleverTap after an outage
    on its side or a change of mapping, then exit.

    Uses the service's configuration (the same environment as `run`). The range is read from
    every partition of KAFKA_TOPICS by timestamp, outside the live consumer group, whose
    offsets stay untouched; failures go to the DLQ as usual. Exits 0 when the whole range was
    processed, 1 if it was interrupted, 2 on a configuration error.
    """
    import os

    from ..service import Replay, run_service

    if until is not None and until <= since:
        raise click.BadParameter("must be after --since", param_hint="--until")
    live = os.environ.get("KAFKA_GROUP_ID", "clevertap-consumer")
    if group == live:
        raise click.BadParameter(
            "must differ from KAFKA_GROUP_ID: a replay would move the live group's offsets back",
            param_hint="--group",
        )
    replay_group = group or f"{live}.replay.{time.strftime('%Y%m%dT%H%M%S')}"
    spec = Replay(since, until, frozenset(destinations) if destinations else None)
    sys.exit(run_service(spec, group_id=replay_group))

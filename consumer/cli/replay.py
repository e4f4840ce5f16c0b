"""`replay`: deliver a time range of the topics again."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from ._options import bootstrap_servers_option, time_value

if TYPE_CHECKING:
    from ..pipeline import Pipeline

#: How often the progress is refreshed on a terminal, and logged otherwise.
TERMINAL_REFRESH_S = 0.5
LOG_EVERY_S = 10.0


def finished(stats: Mapping[str, int]) -> int:
    return stats.get("delivered", 0) + stats.get("filtered", 0) + stats.get("dead_lettered", 0)


def summary_line(stats: Mapping[str, int], total: int | None) -> str:
    """The last line on stdout: how many events of the range were finished, and how."""
    of = f" of {total}" if total is not None else ""
    return (
        f"replayed {finished(stats)}{of} events: delivered {stats.get('delivered', 0)},"
        f" filtered {stats.get('filtered', 0)}, dead-lettered {stats.get('dead_lettered', 0)}"
    )


@contextmanager
def progress(pipeline: Pipeline) -> Iterator[None]:
    """Show the replay's progress while it runs, then print its summary line on stdout.

    A rich progress bar on stderr when stderr is a terminal, else a `replay progress` log line
    every 10 s (in the service's log format). Reads the poll thread's counters from a thread of
    its own, so the loop does no display work.
    """
    import logging

    done = threading.Event()
    log = logging.getLogger("consumer.replay")

    def counts() -> str:
        s = pipeline.stats
        return (
            f"{s.get('delivered', 0)} delivered, {s.get('filtered', 0)} filtered,"
            f" {s.get('dead_lettered', 0)} dead-lettered"
        )

    def on_terminal() -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("[bold]replay[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        ) as bar:
            task = bar.add_task("replay", total=None, counts="")
            while True:
                stopping = done.wait(TERMINAL_REFRESH_S)
                bar.update(
                    task, total=pipeline.replay_total, completed=finished(pipeline.stats), counts=counts()
                )
                if stopping:
                    return

    def in_logs() -> None:
        while not done.wait(LOG_EVERY_S):
            extra: dict[str, Any] = {"finished": finished(pipeline.stats), "records": pipeline.replay_total}
            log.info("replay progress: %s", counts(), extra=extra)

    thread = threading.Thread(
        target=on_terminal if sys.stderr.isatty() else in_logs, name="replay-progress", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(5)
        click.echo(summary_line(pipeline.stats, pipeline.replay_total))


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
@bootstrap_servers_option()
def replay(
    since: int,
    until: int | None,
    destinations: tuple[str, ...],
    group: str | None,
    bootstrap_servers: str | None,
) -> None:
    """Deliver the events of a time range again, e.g. to backfill CleverTap after an outage
    on its side or a change of mapping, then exit.

    Uses the service's configuration (the same environment as `run`). The range is read from
    every partition of KAFKA_TOPICS by timestamp, outside the live consumer group, whose
    offsets stay untouched; failures go to the DLQ as usual. Progress shows on stderr (a bar on
    a terminal, a log line every 10 s otherwise); the last line on stdout counts the events
    delivered, filtered and dead-lettered. Exits 0 when the whole range was processed, 1 if it
    was interrupted or Kafka is unreachable, 2 on a configuration error.
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
    overrides: dict[str, Any] = {"kafka_bootstrap_servers": bootstrap_servers} if bootstrap_servers else {}
    sys.exit(run_service(spec, group_id=replay_group, watch=progress, **overrides))

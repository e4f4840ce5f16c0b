"""`sample-events`: the deterministic sample corpus as JSON lines on stdout."""

from __future__ import annotations

import sys

import click


@click.command("sample-events")
@click.argument("n", type=click.IntRange(min=0))
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same events, byte for byte.")
@click.option(
    "--destinations",
    default="dest-1,dest-2,dest-3,dest-4",
    show_default=True,
    help="Comma-separated destination ids the events' destinationId is drawn from.",
)
def sample_events(n: int, seed: int, destinations: str) -> None:
    """Write N realistic RudderStack events, one JSON object per line, to stdout.

    The mix: track ~55%, identify ~15% (traits; some mobile ones carry a device token), page
    ~10%, screen ~10%, Order Completed ~7%, alias ~3%; web and mobile contexts; about one user
    in twenty has a numeric userId. Pipe it into `clevertap-consumer produce`.
    """
    from ..sample import sample_lines

    ids = [d.strip() for d in destinations.split(",") if d.strip()]
    if not ids:
        raise click.BadParameter("name at least one destination id", param_hint="--destinations")
    out = sys.stdout.buffer
    out.writelines(sample_lines(n, seed, ids))
    out.flush()

"""Option values shared by several commands."""

from __future__ import annotations

import time
from collections.abc import Callable

import click
from click.decorators import FC


def bootstrap_servers_option() -> Callable[[FC], FC]:
    """`--bootstrap-servers`: the Kafka tools' way to reach another cluster for one run."""
    return click.option(
        "--bootstrap-servers",
        help="Kafka bootstrap servers; overrides KAFKA_BOOTSTRAP_SERVERS (the SASL/SSL settings stay).",
    )


def format_option(default: str, help: str) -> Callable[[FC], FC]:
    """`--format`: a person's rendering (`default`) or JSON for scripts."""
    return click.option(
        "--format", "fmt", type=click.Choice([default, "json"]), default=default, show_default=True, help=help
    )


def delivery_timeout_option(what: str) -> Callable[[FC], FC]:
    """`--delivery-timeout`: how long the tools' producers wait before a record counts as lost."""
    return click.option(
        "--delivery-timeout",
        type=click.FloatRange(min=1),
        default=30.0,
        show_default=True,
        help=f"Seconds {what} may wait for the broker before it counts as failed.",
    )


def time_value(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    """A TIME option as epoch milliseconds; ages such as `2h` count back from now.

    As a click callback, a bad value becomes a usage error that names the option.
    """
    if value is None:
        return None
    from ..timeparse import parse_time

    try:
        return parse_time(value, int(time.time() * 1000))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None

"""Option values shared by several commands."""

from __future__ import annotations

import time

import click


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

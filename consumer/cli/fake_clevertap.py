"""`fake-clevertap`: run the fake CleverTap server until SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import click


def _account(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    accounts: dict[str, str] = {}
    for value in values:
        account, sep, passcode = value.partition(":")
        if not sep or not account or not passcode:
            raise click.BadParameter(f"expected ID:PASSCODE, got {value!r}")
        accounts[account] = passcode
    return accounts


@click.command("fake-clevertap")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one)."
)
@click.option(
    "--account",
    "accounts",
    multiple=True,
    callback=_account,
    metavar="ID:PASSCODE",
    help="An account the fake accepts; repeat for more.",
)
@click.option(
    "--any-account",
    is_flag=True,
    help="Accept any account id and passcode too (implied when no --account is given).",
)
@click.option(
    "--max-concurrent",
    default=15,
    show_default=True,
    type=click.IntRange(1),
    help="Concurrent uploads per account before HTTP 429.",
)
@click.option(
    "--attribution-token",
    "attribution_tokens",
    multiple=True,
    callback=_account,
    metavar="ID:TOKEN",
    help="The account token /attribution checks for an account; repeat for more.",
)
@click.option(
    "--attribution-partner",
    "attribution_partners",
    multiple=True,
    help="A whitelisted /attribution partner name (none given: any partner); repeat for more.",
)
def fake_clevertap(  # noqa: PLR0917 (click passes every option by position)
    host: str,
    port: int,
    accounts: dict[str, str],
    any_account: bool,
    max_concurrent: int,
    attribution_tokens: dict[str, str],
    attribution_partners: tuple[str, ...],
) -> None:
    """Serve POST /1/upload like CleverTap, with a /_fake/ control API for tests.

    Prints `listening on http://HOST:PORT` once the socket is bound, then serves until SIGTERM
    or SIGINT.
    """
    from ..fake_clevertap import FakeCleverTap

    server = FakeCleverTap(
        host,
        port,
        accounts,
        any_account=any_account or not accounts,
        max_concurrent=max_concurrent,
        attribution_tokens=attribution_tokens,
        attribution_partners=attribution_partners,
    )
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.start()
    click.echo(f"listening on {server.url}")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    server.close()

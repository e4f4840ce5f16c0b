"""`run`: the service."""

from __future__ import annotations

import sys

import click


@click.command("run")
def run() -> None:
    """Consume events from Kafka, deliver them to CleverTap, commit after delivery.

    Configured by environment variables and secret files (see README, "Configuration").
    SIGTERM drains in-flight deliveries (DRAIN_TIMEOUT_SECONDS), commits, and exits 0; a bad
    setting exits 2 with a message naming it.
    """
    from ..service import run_service

    sys.exit(run_service())

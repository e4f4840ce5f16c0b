"""`check-config`: validate settings and the destinations file, print what the service would use."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson


@click.command("check-config")
@click.option(
    "--destinations",
    "destinations_file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="DESTINATIONS_FILE",
    required=True,
    help="Destinations file (JSON or YAML). Default: $DESTINATIONS_FILE.",
)
def check_config(destinations_file: Path) -> None:
    """Validate the destinations file and print the effective configuration, secrets redacted.

    Exits 0 when the file is valid and every passcode can be read, 2 otherwise.
    """
    from ..destinations import ConfigError, load_destinations

    try:
        loaded = load_destinations(destinations_file)
        effective = []
        for d in loaded.destinations:
            d.resolve_passcode()
            effective.append(
                {
                    "id": d.id,
                    "accountId": d.account_id,
                    "passcode": "**********",
                    "region": d.region,
                    "host": d.host,
                    "profile": d.profile.value,
                    "trackAnonymous": d.track_anonymous,
                    "enableObjectIdMapping": d.enable_object_id_mapping,
                    "eventFilteringOption": d.event_filtering_option.value,
                    "whitelistedEvents": list(d.whitelisted_events),
                    "blacklistedEvents": list(d.blacklisted_events),
                    "accountToken": None if d.account_token is None else "**********",
                    "consentRules": len(d.consent_gate().rules) + len(d.consent_gate().legacy),
                    "ignoredKeys": list(d.ignored_keys),  # device-mode only, no effect here
                }
            )
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(orjson.dumps({"destinations": effective}, option=orjson.OPT_INDENT_2).decode())

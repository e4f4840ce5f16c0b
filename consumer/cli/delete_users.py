"""`delete-users`: publish a user-deletion (regulation) request, for one-off erasure tickets."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ._options import bootstrap_servers_option, delivery_timeout_option


@click.command("delete-users")
@click.option(
    "--destination",
    "destination_id",
    required=True,
    help="destinationId whose CleverTap account deletes the users.",
)
@click.option(
    "--user-id",
    "user_ids",
    multiple=True,
    metavar="ID",
    help="A userId (CleverTap identity); repeat for more.",
)
@click.option(
    "--clevertap-id",
    "clevertap_ids",
    multiple=True,
    metavar="GUID",
    help="A CleverTap ID (objectId/guid); repeat for more.",
)
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='One id per line: a bare userId, or {"userId": …} / {"cleverTapId": …}.',
)
@click.option(
    "--topic",
    envvar="KAFKA_REGULATION_TOPIC",
    required=True,
    help="Regulation topic. Default: $KAFKA_REGULATION_TOPIC.",
)
@bootstrap_servers_option()
@delivery_timeout_option("a request")
def delete_users(
    *,
    destination_id: str,
    user_ids: tuple[str, ...],
    clevertap_ids: tuple[str, ...],
    file: Path | None,
    topic: str,
    bootstrap_servers: str | None,
    delivery_timeout: float,
) -> None:
    """Ask the service to delete users from CleverTap: publishes RudderStack-shaped
    `suppress_with_delete` requests (≤ 1000 users each) to the regulation topic, which the
    service consumes when KAFKA_REGULATION_TOPIC is set.

    Progress goes to stderr, the summary to stdout. Exit status: 0 published, 1 a request was
    not acknowledged by Kafka, 2 nothing to delete, a bad line in --file, or bad settings.
    """
    from confluent_kafka import KafkaException, Producer

    from ..deletion import PublishSummary, publish, read_ids
    from ..destinations import ConfigError
    from ..settings import ClientSettings, load_client_settings, tool_producer_config

    users, guids = list(user_ids), list(clevertap_ids)
    if file is not None:
        more_users, more_guids, bad = read_ids(file.read_text().splitlines())
        if bad:
            click.echo(
                f"delete-users: {file}: no userId or cleverTapId on line(s) {', '.join(map(str, bad[:10]))}",
                err=True,
            )
            sys.exit(2)
        users += more_users
        guids += more_guids
    if not users and not guids:
        click.echo("delete-users: give --user-id, --clevertap-id or --file", err=True)
        sys.exit(2)
    try:
        overrides = {"kafka_bootstrap_servers": bootstrap_servers} if bootstrap_servers else {}
        settings = load_client_settings(ClientSettings, **overrides)
    except ConfigError as exc:
        click.echo(f"delete-users: {exc}", err=True)
        sys.exit(2)
    producer = Producer(
        tool_producer_config(
            settings, "clevertap-consumer-delete-users", delivery_timeout_ms=int(delivery_timeout * 1000)
        )
    )

    def progress(s: PublishSummary) -> None:
        click.echo(
            f"published {s.requests} request(s): {s.user_ids} userIds, {s.clevertap_ids} cleverTapIds",
            err=True,
        )

    try:
        summary = publish(
            producer,
            topic,
            destination_id=destination_id,
            user_ids=users,
            clevertap_ids=guids,
            progress=progress,
        )
    except KafkaException as exc:
        click.echo(f"delete-users: not published: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"requested deletion of {summary.user_ids} userIds and {summary.clevertap_ids} cleverTapIds "
        f"from destination {destination_id!r} in {summary.requests} request(s) on {topic}"
    )

"""`produce`: publish JSON-lines events to a topic, Avro-encoded in the project's schema."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import IO, Any

import click

from ._options import bootstrap_servers_option, delivery_timeout_option


@click.command("produce")
@click.option("--topic", "-t", required=True, help="Topic to publish to.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option(
    "--key-field",
    "key_fields",
    multiple=True,
    metavar="FIELD",
    help="Event field whose value is the record key; repeat for fallbacks. Default: userId, then anonymousId.",
)
@click.option("--partition", type=click.IntRange(min=0), help="Publish every event to this partition.")
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), help="At most this many events per second."
)
@bootstrap_servers_option()
@delivery_timeout_option("an event")
def produce(
    *,
    topic: str,
    file: Path | None,
    key_fields: tuple[str, ...],
    partition: int | None,
    rate: float | None,
    bootstrap_servers: str | None,
    delivery_timeout: float,
) -> None:
    """Publish RudderStack events (one JSON object per line, FILE or stdin) to TOPIC.

    Events are encoded in schemas/event.avsc: Confluent wire format after registering the schema
    under <topic>-value when SCHEMA_REGISTRY_URL is set, plain Avro otherwise. Kafka connection
    settings are the service's (KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*,
    KAFKA_SSL_CA_LOCATION, KAFKA_EXTRA_CONFIG). The key is the event's userId, else anonymousId, so
    one user's events keep their order; a destinationId header is copied from the event.
    The producer is idempotent with acks=all.

    Invalid lines are reported with their line numbers and skipped. The last line on stdout
    counts produced, failed and invalid events; the exit code is 1 if any event failed or was
    invalid, 2 if the settings or the registry are wrong, 130 after Ctrl-C.
    """
    from confluent_kafka import KafkaException, Producer

    from ..codec import Encoder, RegistrationError
    from ..destinations import ConfigError
    from ..produce import DEFAULT_KEY_FIELDS, Publisher, load_produce_settings, producer_config

    def problem(message: str) -> None:
        click.echo(f"produce: {message}", err=True)

    overrides: dict[str, Any] = {"kafka_bootstrap_servers": bootstrap_servers} if bootstrap_servers else {}
    try:
        settings = load_produce_settings(**overrides)
        encoder = Encoder.from_settings(settings, topic)
        # librdkafka's threads start here and inherit this thread's signal mask: with SIGINT
        # blocked in them, Ctrl-C always lands on this thread and interrupts its read of stdin
        # (delivered to one of them, it waited for the input's end).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            producer = Producer(producer_config(settings, delivery_timeout_ms=int(delivery_timeout * 1000)))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    except (ConfigError, RegistrationError, ValueError, KafkaException) as exc:
        problem(f"error: {exc}")
        sys.exit(2)

    publisher = Publisher(
        producer,
        encoder,
        topic,
        key_fields=key_fields or DEFAULT_KEY_FIELDS,
        partition=partition,
        rate=rate,
        on_problem=problem,
    )
    source: IO[bytes] = file.open("rb") if file is not None else sys.stdin.buffer
    total = file.stat().st_size if file is not None else None
    interrupted = False
    try:
        if sys.stderr.isatty():
            _with_progress(publisher, source, total, topic, delivery_timeout)
        else:
            publisher.publish_lines(source)
            publisher.finish(delivery_timeout + 5)
    except KeyboardInterrupt:  # stop reading, but report what reached the broker
        interrupted = True
        problem("interrupted; waiting up to 5 s for the events already sent")
        publisher.finish(5)
    finally:
        if file is not None:
            source.close()
        encoder.close()
    summary = publisher.summary
    if summary.first_error and summary.failed > 1:
        problem(f"{summary.failed} events not produced; the first failure: {summary.first_error}")
    click.echo(f"{summary.line()} → {topic}")
    sys.exit(130 if interrupted else 0 if summary.ok else 1)


def _with_progress(publisher: Any, source: IO[bytes], total: int | None, topic: str, timeout: float) -> None:
    """The same work under a rich progress bar on stderr (input bytes read; events acknowledged)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    def counts() -> str:
        s = publisher.summary
        return f"{s.produced} produced, {s.failed} failed, {len(s.invalid_lines)} invalid"

    with Progress(
        SpinnerColumn(),
        TextColumn(f"[bold]{topic}[/]"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as progress:
        task = progress.add_task("produce", total=total, counts=counts())
        lines = 0

        def advance(size: int) -> None:
            nonlocal lines
            lines += 1
            if lines % 200 == 0:
                progress.update(task, advance=size, counts=counts())
            else:
                progress.advance(task, size)

        publisher.publish_lines(source, advance)
        publisher.finish(timeout + 5, lambda: progress.update(task, counts=counts()))
        progress.update(task, counts=counts(), completed=total)

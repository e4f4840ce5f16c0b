"""`dlq inspect` and `dlq redrive`: see why events were dead-lettered, then send them back."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, get_args

import click

from ..contracts import Stage

if TYPE_CHECKING:
    from ..dlq_admin import DlqReader, DlqSettings, Filters, RedriveCounts, Summary

from ._options import bootstrap_servers_option, delivery_timeout_option, format_option, time_value

F = TypeVar("F", bound=Callable[..., Any])


def _filter_options(command: F) -> F:
    """The options that choose dead letters, the same for inspect and redrive."""
    options = [
        click.option(
            "--topic",
            metavar="DLQ_TOPIC",
            help="The dead-letter topic. Default: $DLQ_TOPIC, else clevertap-consumer-dlq.",
        ),
        click.option(
            "--stage",
            "stages",
            multiple=True,
            type=click.Choice(get_args(Stage)),
            help="Only records that failed in this stage; repeat for several.",
        ),
        click.option(
            "--reason",
            "reasons",
            multiple=True,
            metavar="REASON",
            help="Only records with this dlq.reason (e.g. unknown_destination); repeat for several.",
        ),
        click.option(
            "--destination",
            "destinations",
            multiple=True,
            metavar="ID",
            help="Only records routed to this destination id; repeat for several.",
        ),
        click.option(
            "--since",
            metavar="TIME",
            callback=time_value,
            help="Only records with a Kafka timestamp at or after TIME (ISO-8601, epoch s/ms, or 30m, 2h, 7d ago).",
        ),
        click.option(
            "--until",
            metavar="TIME",
            callback=time_value,
            help="Only records with a Kafka timestamp before TIME.",
        ),
        bootstrap_servers_option(),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _fail(command: str, message: str, code: int) -> NoReturn:
    click.echo(f"dlq {command}: error: {message}", err=True)
    sys.exit(code)


def _settings(command: str, bootstrap_servers: str | None) -> DlqSettings:
    from ..destinations import ConfigError
    from ..dlq_admin import DlqSettings
    from ..settings import load_client_settings

    overrides = {"kafka_bootstrap_servers": bootstrap_servers} if bootstrap_servers else {}
    try:
        return load_client_settings(DlqSettings, **overrides)
    except ConfigError as exc:
        _fail(command, str(exc), 2)


def _filters(
    stages: tuple[str, ...],
    reasons: tuple[str, ...],
    destinations: tuple[str, ...],
    since: int | None,
    until: int | None,
) -> Filters:
    from ..dlq_admin import Filters

    if since is not None and until is not None and until <= since:
        raise click.BadParameter("must be later than --since", param_hint="'--until'")
    return Filters(frozenset(stages), frozenset(reasons), frozenset(destinations), since, until)


def _open(command: str, settings: DlqSettings, topic: str) -> DlqReader:
    from confluent_kafka import KafkaException

    from ..dlq_admin import DlqReader, consumer_config

    try:
        return DlqReader(consumer_config(settings), topic)
    except (KafkaException, ValueError) as exc:  # a bad KAFKA_EXTRA_CONFIG setting, say
        _fail(command, f"cannot create a Kafka client: {exc}", 2)


def _unknown_topic(exc: Exception, option: str) -> click.BadParameter:
    return click.BadParameter(str(exc), param_hint=f"'{option}'")


def _ms_text(ms: int | None) -> str:
    from datetime import UTC, datetime

    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.group("dlq")
def dlq() -> None:
    """Inspect the dead-letter topic and redrive its records once the cause is fixed.

    Both commands read the service's Kafka settings (KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL,
    KAFKA_SASL_*, KAFKA_SSL_CA_LOCATION, KAFKA_EXTRA_CONFIG, DLQ_TOPIC, SCHEMA_REGISTRY_URL) and
    need neither DESTINATIONS_FILE nor KAFKA_TOPICS. They read the DLQ up to its end at the moment
    they start, never wait for new records, and commit no offsets.
    """


@dlq.command("inspect")
@_filter_options
@click.option("--limit", type=click.IntRange(min=1), help="Stop after N matching records.")
@format_option(
    "table",
    "table: counts by stage, reason, CleverTap code, destination and source topic;"
    " json: one object per record.",
)
@click.option(
    "--decode",
    is_flag=True,
    help="With --format json: add the decoded RudderStack event (Schema Registry if"
    " SCHEMA_REGISTRY_URL is set, else plain Avro).",
)
def inspect(
    *,
    topic: str | None,
    stages: tuple[str, ...],
    reasons: tuple[str, ...],
    destinations: tuple[str, ...],
    since: int | None,
    until: int | None,
    bootstrap_servers: str | None,
    limit: int | None,
    fmt: str,
    decode: bool,
) -> None:
    """Show what is in the dead-letter topic and why.

    The table counts matching records by stage, reason, CleverTap code, destination and source
    topic. --format json prints one JSON object per record: DLQ topic, partition and offset,
    Kafka timestamp, key, every dlq.* header (without the prefix), the original headers, the
    value's size and, with --decode, the event (or why it does not decode). Exit codes: 0, 1 when
    the DLQ could not be read, 2 for bad options or settings.
    """
    import orjson

    from ..codec import Decoder
    from ..dlq_admin import DlqError, UnknownTopicError, letter_json, scan

    if decode and fmt != "json":
        raise click.UsageError("--decode shows events record by record: add --format json")
    filters = _filters(stages, reasons, destinations, since, until)
    settings = _settings("inspect", bootstrap_servers)
    dlq_topic = topic or settings.dlq_topic
    decoder = None
    if decode:
        try:
            decoder = Decoder.from_settings(settings)
        except ValueError as exc:
            _fail("inspect", str(exc), 2)
    reader = _open("inspect", settings, dlq_topic)
    try:
        windows = reader.plan(since)
        if fmt == "json":

            def show(letter: Any) -> None:
                line = orjson.dumps(letter_json(letter, decoder), default=str)
                click.echo(line.decode())

            summary = scan(reader.read(windows), filters, show, limit=limit)
            click.echo(f"{summary.matched} of {summary.read} records matched", err=True)
        else:
            summary = scan(reader.read(windows), filters, lambda _letter: None, limit=limit)
            _print_summary(dlq_topic, summary, limit)
    except UnknownTopicError as exc:
        raise _unknown_topic(exc, "--topic") from None
    except DlqError as exc:
        _fail("inspect", str(exc), 1)
    finally:
        reader.close()
        if decoder is not None:
            decoder.close()


def _console() -> Any:
    """rich's console for stdout. Piped into a file or `less`, rich would assume 80 columns and cut
    topic names short; there the table gets the room it needs (COLUMNS still wins)."""
    import os

    from rich.console import Console

    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=PIPE_WIDTH if wide else None)


PIPE_WIDTH = 250


def _print_summary(topic: str, summary: Summary, limit: int | None) -> None:
    from rich.table import Table

    console = _console()
    title = f"{topic}: {summary.matched} of {summary.read} records read match"
    if not summary.groups:
        console.print(title)
        return
    table = Table(title=title, title_justify="left")
    for name in ("stage", "reason", "code", "destination", "source topic"):
        table.add_column(name, overflow="fold")
    table.add_column("records", justify="right")
    table.add_column("last dead-lettered", overflow="fold")
    for key, count in sorted(summary.groups.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(*key, str(count), _ms_text(summary.latest_ms.get(key)))
    if limit is not None and summary.matched >= limit:
        table.caption = f"stopped at --limit {limit}: later records were not read"
    console.print(table)


@dlq.command("redrive")
@_filter_options
@click.option(
    "--to",
    metavar="TOPIC",
    help="Publish to TOPIC instead of each record's source topic (dlq.source.topic).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be redriven; publish nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation on a terminal.")
@delivery_timeout_option("a record")
def redrive(
    *,
    topic: str | None,
    stages: tuple[str, ...],
    reasons: tuple[str, ...],
    destinations: tuple[str, ...],
    since: int | None,
    until: int | None,
    bootstrap_servers: str | None,
    to: str | None,
    dry_run: bool,
    yes: bool,
    delivery_timeout: float,
) -> None:
    """Re-publish matching dead letters to the topic they came from, once the cause is fixed.

    Each record goes back with its original key, value, timestamp and headers, without the dlq.*
    headers and with redrive.from=<dlq topic>/<partition>/<offset>; to its source topic it goes
    to its original partition. Records without a dlq.source.topic header, or whose source topic no
    longer exists, are skipped and reported unless --to names a topic. The producer is idempotent
    with acks=all, and a record counts as redriven only once the broker confirmed it. The DLQ is
    left as it is: running the same redrive twice publishes the records twice.

    On a terminal it asks before publishing (not with --yes or --dry-run). The last line on
    stdout counts redriven, skipped-by-filter, unroutable and failed records. Exit codes: 0 when
    every matching record was redriven, 1 when any failed or had no target (or the DLQ could not
    be read, or the answer was no), 2 for bad options or settings, 130 after Ctrl-C.
    """
    from confluent_kafka import KafkaException, Producer

    from ..dlq_admin import DlqError, Redriver, UnknownTopicError, producer_config

    filters = _filters(stages, reasons, destinations, since, until)
    settings = _settings("redrive", bootstrap_servers)
    dlq_topic = topic or settings.dlq_topic
    if to is not None and to == dlq_topic:
        raise click.BadParameter("is the dead-letter topic itself", param_hint="'--to'")
    reader = _open("redrive", settings, dlq_topic)
    interrupted = False
    try:
        topics = reader.topics()
        windows = reader.plan(since, topics)
        if to is not None and to not in topics:
            raise click.BadParameter(f"topic {to!r} does not exist", param_hint="'--to'")
        if not (yes or dry_run) and sys.stdin.isatty():
            preview = Redriver(None, topics, to, dry_run=True)
            _run(reader.read(windows), filters, preview)
            _confirm(dlq_topic, preview.counts)
        if dry_run:
            redriver = Redriver(None, topics, to, dry_run=True)
        else:
            try:
                conf = producer_config(settings, delivery_timeout_ms=int(delivery_timeout * 1000))
                redriver = Redriver(Producer(conf), topics, to)
            except (KafkaException, ValueError) as exc:
                _fail("redrive", f"cannot create a Kafka producer: {exc}", 2)
        try:
            _run(reader.read(windows), filters, redriver)
            counts = redriver.finish(delivery_timeout + 5)
        except KeyboardInterrupt:  # stop reading, but report what the broker already has
            interrupted = True
            click.echo("dlq redrive: interrupted; waiting up to 5 s for records already sent", err=True)
            counts = redriver.finish(5)
    except UnknownTopicError as exc:
        raise _unknown_topic(exc, "--topic") from None
    except DlqError as exc:
        _fail("redrive", str(exc), 1)
    finally:
        reader.close()
    _report(counts, dry_run)
    sys.exit(130 if interrupted else 0 if counts.ok else 1)


def _run(letters: Any, filters: Filters, redriver: Any) -> None:
    for letter in letters:
        if filters.match(letter):
            redriver.send(letter)
        else:
            redriver.skip()


def _confirm(dlq_topic: str, counts: RedriveCounts) -> None:
    """Ask on the terminal, naming how many records go where, before anything is published."""
    per_topic = counts.by_topic()
    total = sum(per_topic.values())
    unroutable = sum(counts.unroutable.values())
    if not total:
        return
    where = ", ".join(f"{t}: {n}" for t, n in sorted(per_topic.items()))
    question = f"Redrive {total} record{'s' if total != 1 else ''} from {dlq_topic} ({where})"
    if unroutable:
        question += f"; {unroutable} without a target will be skipped"
    click.confirm(question + "?", abort=True, err=True)


def _report(counts: RedriveCounts, dry_run: bool) -> None:
    for why, n in sorted(counts.unroutable.items()):
        click.echo(f"dlq redrive: skipped {n} record{'s' if n != 1 else ''}: {why}", err=True)
    if counts.examples:
        click.echo("dlq redrive: records not redriven (first ones):", err=True)
        for example in counts.examples:
            click.echo(f"  {example}", err=True)
    if dry_run and counts.targets:
        from rich.table import Table

        table = Table(title="would redrive", title_justify="left")
        for name in ("to topic", "stage", "reason"):
            table.add_column(name, overflow="fold")
        table.add_column("records", justify="right")
        for key, n in sorted(counts.targets.items()):
            table.add_row(*key, str(n))
        _console().print(table)
    click.echo(counts.line(dry_run=dry_run))

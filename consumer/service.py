"""`clevertap-consumer run`: build every stage from the settings, run until SIGTERM, exit cleanly.

Start-up validates everything it can before joining the consumer group — settings, the
destinations file, every passcode, the DLQ topic — so a mistake stops the process with a message
naming it instead of surfacing later as lost or dead-lettered events.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, replace
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from . import logs, observability
from .batch import ENCODE_REASONS
from .codec import DECODE_REASONS, Decoder
from .deliver import FAILURE_REASONS, HTTP_ERRORS, RETRY_REASONS, Deliverer, DeliveryOptions
from .destinations import ConfigError, DestinationsFile, load_destinations, require_subscribed
from .dlq import producer_config
from .dry_run import DeliverSink, DryRunReport, NullDeliverer, RecordingDeadLetters, SamplingDeliverer
from .observability import Observability
from .offsets import Entry
from .pipeline import DeadLetterSink, Pipeline, PipelineOptions
from .reload import DestinationsReloader
from .route import Router
from .settings import Settings, kafka_client_config, load_settings
from .source import consumer_config
from .steps import NoCommits
from .transform import FIX_KINDS, REJECT_REASONS
from .workers import write_port_file

if TYPE_CHECKING:
    from .deletion import DeletionFlow

log = logging.getLogger(__name__)


class BrokerUnreachableError(Exception):
    """Kafka did not answer at start-up: the network or the cluster, not a setting to correct
    (exit status 1, like any fatal Kafka error, so an orchestrator simply retries)."""


def _error_code(exc: KafkaException) -> int | None:
    err = exc.args[0] if exc.args else None
    code = getattr(err, "code", None)
    return code() if callable(code) else None


def ensure_dlq_topic(admin: AdminClient, settings: Settings, *, timeout: float = 15.0) -> None:
    """The DLQ must exist before the first poison message arrives; create it if the broker lets us.

    Asking for the topic list is also the first word with the cluster, so a failure there is an
    unreachable broker (BrokerUnreachableError), never blamed on the DLQ topic; only a refused
    creation is a DLQ_TOPIC problem (ConfigError).
    """
    topic = settings.dlq_topic
    try:
        topics = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise BrokerUnreachableError(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers} within {timeout:g} s: {exc}"
        ) from None
    if topic in topics:
        return
    config = {"retention.ms": str(settings.dlq_topic_retention_ms)}
    new = NewTopic(topic, num_partitions=settings.dlq_topic_partitions, replication_factor=-1, config=config)
    try:
        admin.create_topics([new])[topic].result(30)
        log.info("created DLQ topic", extra={"topic": topic, **config})
    except KafkaException as exc:
        if _error_code(exc) == 36:  # TOPIC_ALREADY_EXISTS: another replica won
            return
        raise ConfigError(
            f"DLQ_TOPIC: topic {topic!r} does not exist and could not be created: {exc}"
        ) from None


ROUTE_REASONS = ("missing_destination", "unknown_destination")


@dataclass(frozen=True, slots=True)
class Replay:
    """`clevertap-consumer replay`: a bounded re-delivery of a time range."""

    since_ms: int
    until_ms: int | None = None
    destinations: frozenset[str] | None = None


def build(
    settings: Settings, replay: Replay | None = None, dry_run: DryRunReport | None = None
) -> tuple[Pipeline, Observability, DeliverSink, DestinationsReloader | None]:
    """Every stage, wired; raises ConfigError for anything an operator has to fix.

    The service (not a replay, which is bounded) also gets a reloader for the destinations file.
    A dry run (`dry_run`, over the range of `replay`) is the same chain with other ends: nothing
    sent (or sent validate-only), nothing dead-lettered, nothing committed, no DLQ topic created.
    """
    destinations = load_destinations(settings.destinations_file)
    require_subscribed(destinations, settings.destinations_file, settings.kafka_topics)
    base_url = str(settings.clevertap_base_url) if settings.clevertap_base_url else None
    validate_only = dry_run is not None and dry_run.validated
    # Reads every passcode now.
    router = Router.from_destinations(destinations, base_url, validate_only=validate_only)
    obs = observability.start(
        settings,
        destinations,
        reasons={
            "decode": DECODE_REASONS,
            "route": ROUTE_REASONS,
            "transform": sorted({*REJECT_REASONS, *ENCODE_REASONS, "internal_error"}),
            "deliver": FAILURE_REASONS,
        },
        retry_reasons=RETRY_REASONS,
        http_errors=HTTP_ERRORS,
        fix_kinds=FIX_KINDS,
    )
    ignored = {d.id: d.ignored_keys for d in destinations.destinations if d.ignored_keys}
    if ignored:
        log.warning(
            "destination keys ignored: %s only steer RudderStack's device-mode SDKs",
            ", ".join(sorted({k for keys in ignored.values() for k in keys})),
            extra={"destinations": sorted(ignored)},
        )
    client: dict[str, Any] = {**kafka_client_config(settings), "logger": logs.kafka_logger()}
    consumer_conf = {**consumer_config(settings, client), "stats_cb": obs.kafka_stats}
    sender = Deliverer(DeliveryOptions.from_settings(settings))
    deliverer: DeliverSink = sender
    dead_letters = None
    if dry_run is None:
        ensure_dlq_topic(AdminClient(client), settings)
    else:
        consumer_conf["enable.auto.commit"] = False  # a throwaway group that leaves no offsets
        deliverer = SamplingDeliverer(deliverer, dry_run) if dry_run.validated else NullDeliverer(dry_run)
        report = dry_run

        def dead_letters(finish: Callable[[Entry], None]) -> DeadLetterSink:
            return RecordingDeadLetters(report, finish)

    options = PipelineOptions.from_settings(settings)
    if replay is not None and replay.destinations is not None:
        unknown = replay.destinations - set(router.routes)
        if unknown:
            raise ConfigError(f"--destination: not in the destinations file: {', '.join(sorted(unknown))}")
        options = replace(options, only_destinations=replay.destinations)
    pipeline = Pipeline(
        options,
        consumer_conf=consumer_conf,
        producer=Producer(producer_config(client)),
        decoder=Decoder.from_settings(settings, settings.kafka_value_format),
        router=router,
        deliverer=deliverer,
        health=obs.health,
        dead_letters=dead_letters,
        commits=NoCommits() if dry_run is not None else None,  # a dry run leaves no offsets
    )
    reloader = None
    if replay is None and dry_run is None:
        reloader = DestinationsReloader(router, destinations, settings)
        # Held batches (onAuthFailure: hold) are sent again with the reloaded credentials.
        reloader.on_reload(lambda _loaded: sender.replace_targets(r.target for r in router.routes.values()))
    return pipeline, obs, deliverer, reloader


def build_deletion(settings: Settings) -> DeletionFlow | None:
    """The user-deletion flow when KAFKA_REGULATION_TOPIC is set (its own group and consumer)."""
    if not settings.kafka_regulation_topic:
        return None
    from .deletion import DeletionFlow, DeletionOptions, deletion_targets

    destinations = load_destinations(settings.destinations_file)
    base_url = str(settings.clevertap_base_url) if settings.clevertap_base_url else None
    client: dict[str, Any] = {**kafka_client_config(settings), "logger": logs.kafka_logger()}
    options = DeletionOptions(
        topic=settings.kafka_regulation_topic,
        group_id=f"{settings.kafka_group_id}-regulation",
        event_group_id=settings.kafka_group_id,
        event_topics=settings.kafka_topics,
        dlq_topic=settings.dlq_topic,
    )
    return DeletionFlow(
        options,
        client_config=client,
        targets=deletion_targets(destinations, base_url),
        delivery=DeliveryOptions.from_settings(settings),
        producer=Producer(producer_config(client)),
    )


# CPython's default is 5 ms. 0.3 ms took replies from CleverTap faster off the socket than 1 ms
# did in the kill campaign, at no CPU cost bench/e2e.py could measure (tune_threads).
SWITCH_INTERVAL_S = 0.0003


def tune_gc() -> None:
    """Fewer garbage-collector passes over a heap that is mostly long-lived.

    Every event allocates dozens of short-lived objects (decoded fields, parsed JSON, records),
    so CPython's default first-generation threshold (700 allocations) runs a collection every
    few events, and each older pass walks the in-flight messages as well. Start-up objects
    (modules, settings, routes) are frozen out of collection; the thresholds are raised.
    Measured with bench/e2e.py: about 15% more events per second.
    """
    gc.freeze()
    gc.set_threshold(10_000, 20, 50)


def tune_threads() -> None:
    """Hand the GIL to the delivery thread within SWITCH_INTERVAL_S instead of CPython's 5 ms.

    While a backlog drains the poll thread is CPU-bound, and every event-loop turn of the
    delivery thread (a reply readable, a request written) waits for the GIL, up to one switch
    interval each. At 5 ms CleverTap's replies sat unread for 100+ ms and batches went out in
    bursts once the poll thread idled, so a kill -9 repeated everything accepted meanwhile.
    Measured (bench/README.md): CPU per event unchanged within noise at 1 and 0.3 ms; the
    reply-to-commit time of the kill campaign fell from ~150 ms to ~20-40 ms.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def _retarget_deletion(deletion: DeletionFlow, settings: Settings, loaded: DestinationsFile) -> None:
    """A reloaded destinations file reaches the deletion flow too (its own thread, own targets)."""
    from .deletion import deletion_targets

    base_url = str(settings.clevertap_base_url) if settings.clevertap_base_url else None
    deletion.replace_targets(deletion_targets(loaded, base_url))


def startup_failed(message: str, status: int) -> int:
    """Report why the service cannot start, as one log line in the configured format (a JSON
    line under LOG_FORMAT=json, which log pipelines parse), and return the exit status."""
    log.error("start-up failed: %s", message, extra={"exit_status": status})
    return status


def _log_format_from_environment() -> logs.LogFormat:
    """LOG_FORMAT as given, for the settings' own error (the settings could not be read)."""
    value = os.environ.get("LOG_FORMAT", "auto").strip().lower()
    return value if value in ("json", "console") else "auto"  # type: ignore[return-value]


ReplayWatch = Callable[[Pipeline], AbstractContextManager[object]]


def run_service(
    replay: Replay | None = None,
    group_id: str | None = None,
    *,
    watch: ReplayWatch | None = None,
    dry_run: DryRunReport | None = None,
    **overrides: Any,
) -> int:
    """Entry point of `clevertap-consumer run` (and `replay`); returns the process exit status.

    `overrides` are settings given on the command line (`--bootstrap-servers`), which win over
    the environment; `watch` wraps a replay (its progress display and summary); `dry_run`
    makes the replay a dry run that fills this report (see consumer/dry_run.py). Exit status:
    2 a setting to fix, 1 Kafka unreachable or failing (or a replay cut short), 0 done.
    """
    if group_id:
        overrides["kafka_group_id"] = group_id
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        logs.configure_logging("INFO", _log_format_from_environment())
        return startup_failed(str(exc), 2)
    logs.configure_logging(settings.log_level, settings.log_format)
    logs.register_settings_secrets(settings)
    if settings.workers > 1 and replay is None and dry_run is None:
        from .workers import supervise

        return supervise(settings, overrides)  # N children, each this function with WORKERS=1
    try:
        pipeline, obs, deliverer, reloader = build(settings, replay, dry_run)
        deletion = build_deletion(settings) if replay is None else None  # never in a dry run
    except BrokerUnreachableError as exc:
        return startup_failed(str(exc), 1)
    except (ConfigError, OSError) as exc:
        return startup_failed(str(exc), 2)

    write_port_file(obs.server.port)  # a WORKERS child: where the supervisor asks its probes
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal received, draining", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # One owner for each lifecycle. Here: observability (first up, last down), the reloader and
    # the deletion thread, stopped in reverse order of start by the ExitStack. The pipeline owns
    # the consumer, the deliverer's close and the DLQ producer (its shutdown order needs them).
    with ExitStack() as lifecycle:
        lifecycle.callback(obs.close)
        if reloader is not None:
            if deletion is not None:
                reloader.on_reload(partial(_retarget_deletion, deletion, settings))
            signal.signal(signal.SIGHUP, lambda _signum, _frame: reloader.request())
            reloader.start()
            lifecycle.callback(reloader.close)
        tune_gc()
        tune_threads()
        deliverer.start()
        log.info(
            "started",
            extra={
                "topics": list(settings.kafka_topics),
                "group": settings.kafka_group_id,
                "port": obs.server.port,
            },
        )
        if deletion is not None:
            deletion_thread = threading.Thread(
                target=deletion.run, args=(stop,), name="deletion", daemon=True
            )
            deletion_thread.start()
            lifecycle.callback(deletion_thread.join, 30)
            log.info(
                "user deletion on",
                extra={"topic": deletion.options.topic, "group": deletion.options.group_id},
            )
        lifecycle.callback(stop.set)  # first on the way out: every other thread sees it
        try:
            if replay is None:
                pipeline.run(stop)
                return 0
            with watch(pipeline) if watch is not None else nullcontext():
                complete = pipeline.replay(stop, replay.since_ms, replay.until_ms)
        except KafkaException as exc:
            log.error("stopping on a fatal Kafka error: %s", exc)
            return 1
        if not complete:
            log.warning("replay interrupted before the end of the range", extra=dict(pipeline.stats))
            return 1
        log.info("replay complete", extra=dict(pipeline.stats))
    return 0

"""`/metrics`, `/healthz` and `/readyz` on one port, served from a daemon thread.

Liveness and readiness answer different questions, and mixing them up restarts pods for the
wrong reason:

- `/healthz` (liveness; `/livez` is an alias): is the processing loop still turning? The poll
  thread calls `Health.beat()` every iteration, busy or idle, so a missing beat means a deadlock
  or a call that never returns, and a restart is the cure. A Kafka or CleverTap outage does not
  stop the beats (the loop keeps polling, pausing and retrying), so it never fails liveness and
  never restarts every pod at once.
- `/readyz` (readiness): has this consumer joined its group (an assignment arrived, possibly
  empty when there are more consumers than partitions), is the broker reachable, and is it not
  shutting down? Nothing routes traffic to a consumer, so readiness paces rollouts and feeds
  the `clevertap_consumer_ready` gauge that alerts watch.

The state lives in a `Health` object the pipeline owns; the HTTP thread only reads it.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from . import metrics

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Status:
    """One probe answer: HTTP 200 when `ok`, else 503; `body` is the JSON reply."""

    ok: bool
    body: dict[str, Any] = field(default_factory=dict)


class Health:
    """Liveness and readiness state, written by the poll thread, read by the HTTP thread.

    `stall_after` is how long the loop may go without a `beat()` before `/healthz` fails: well
    above one consume timeout plus the longest bounded wait in the loop (a revocation waits up
    to REVOKE_TIMEOUT_SECONDS), well below `max.poll.interval.ms`. Before the first beat (start-up:
    config, Schema Registry, first metadata) the loop gets `start_grace` instead.
    """

    def __init__(
        self,
        stall_after: float = 60.0,
        start_grace: float = 300.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        publish: bool = True,
    ) -> None:
        self.stall_after = stall_after
        self.start_grace = start_grace
        self._clock = clock
        self._publish = publish
        self._lock = threading.Lock()
        self._created = clock()
        self._last_beat: float | None = None
        self._assigned: int | None = None
        self._broker_connected: bool | None = None
        self._shutting_down = False
        self._publish_ready()

    # -- written by the pipeline -------------------------------------------------------------

    def beat(self) -> None:
        """The loop came round once (with or without records). Cheap: call every iteration."""
        now = self._clock()
        with self._lock:
            self._last_beat = now

    def set_assigned(self, partitions: int) -> None:
        """Partitions owned after a rebalance callback (0 is a valid answer from the group).

        An assignment is proof the coordinator answered, so an unknown broker state becomes
        "connected"; an explicit `set_broker_connected(False)` is only undone explicitly.
        """
        with self._lock:
            self._assigned = partitions
            if self._broker_connected is None:
                self._broker_connected = True
        self._publish_ready()

    def set_broker_connected(self, connected: bool) -> None:
        """From `error_cb` (`_ALL_BROKERS_DOWN` → False) and from `KafkaStats` every interval."""
        with self._lock:
            self._broker_connected = connected
        self._publish_ready()

    def set_shutting_down(self) -> None:
        """SIGTERM received: stop being ready at once; stay live while draining."""
        with self._lock:
            self._shutting_down = True
        self._publish_ready()

    # -- read by the HTTP thread -------------------------------------------------------------

    def liveness(self) -> Status:
        now = self._clock()
        with self._lock:
            last, shutting_down = self._last_beat, self._shutting_down
        if shutting_down:
            return Status(True, {"status": "ok", "reason": "shutting down"})
        if last is None:
            waited = now - self._created
            if waited <= self.start_grace:
                return Status(True, {"status": "ok", "reason": "starting"})
            return Status(
                False,
                {
                    "status": "stalled",
                    "reason": f"processing loop has not started after {waited:.1f} s "
                    f"(limit {self.start_grace:g} s)",
                },
            )
        age = now - last
        if age <= self.stall_after:
            return Status(True, {"status": "ok", "last_beat_seconds_ago": round(age, 3)})
        return Status(
            False,
            {
                "status": "stalled",
                "reason": f"processing loop made no progress for {age:.1f} s (limit {self.stall_after:g} s)",
                "last_beat_seconds_ago": round(age, 3),
            },
        )

    def readiness(self) -> Status:
        with self._lock:
            assigned, connected, shutting_down = self._assigned, self._broker_connected, self._shutting_down
        if shutting_down:
            return Status(False, {"status": "not_ready", "reason": "shutting down"})
        if connected is False:
            return Status(False, {"status": "not_ready", "reason": "Kafka broker unreachable"})
        if assigned is None:
            return Status(
                False, {"status": "not_ready", "reason": "waiting for the group's partition assignment"}
            )
        return Status(True, {"status": "ready", "assigned_partitions": assigned})

    def _publish_ready(self) -> None:
        if self._publish:
            metrics.ready.set(1 if self.readiness().ok else 0)


class _QuietHandler(WSGIRequestHandler):
    """Probes arrive every few seconds; their access log would drown everything else."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("health http: " + format, *args)


def _app(
    liveness: Callable[[], Status], readiness: Callable[[], Status], registry: CollectorRegistry
) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    metrics_app = make_wsgi_app(registry)

    def reply(start_response: StartResponse, status: Status) -> list[bytes]:
        body = json.dumps(status.body).encode()
        start_response(
            "200 OK" if status.ok else "503 Service Unavailable",
            [
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            result: Iterable[bytes] = metrics_app(environ, start_response)
            return result
        if path in ("/healthz", "/livez"):
            return reply(start_response, liveness())
        if path == "/readyz":
            return reply(start_response, readiness())
        body = b'{"status":"not_found","endpoints":["/metrics","/healthz","/readyz"]}'
        start_response(
            "404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


class HealthServer:
    """The running HTTP server. `port` is the bound port (useful with port 0)."""

    def __init__(self, httpd: ThreadingWSGIServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        self.host: str = str(httpd.server_address[0])
        self.port: int = int(httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout)


def serve(
    health: Health, host: str = "0.0.0.0", port: int = 9100, registry: CollectorRegistry = REGISTRY
) -> HealthServer:
    """Start the metrics/health server on its own daemon thread and return at once.

    Raises OSError when the address is taken, so a misconfigured METRICS_PORT stops start-up.
    """
    return serve_app(health.liveness, health.readiness, host, port, registry)


def serve_app(
    liveness: Callable[[], Status],
    readiness: Callable[[], Status],
    host: str,
    port: int,
    registry: CollectorRegistry,
) -> HealthServer:
    """`serve` with any probe answers: the WORKERS supervisor aggregates its children's."""
    family, _, _, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]

    class _Server(ThreadingWSGIServer):
        address_family = family

    httpd = make_server(str(sockaddr[0]), port, _app(liveness, readiness, registry), _Server, _QuietHandler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="health-http", daemon=True
    )
    thread.start()
    server = HealthServer(httpd, thread)
    log.info("serving /metrics, /healthz and /readyz on %s", server.url)
    return server

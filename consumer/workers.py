"""`WORKERS=N`: N full consumer processes in one pod, one supervisor, one /metrics.

Why whole processes and not a pool behind one consumer. A profile of one process at full speed
puts about a third of its CPU in the delivery thread (httpx), a fifth in bookkeeping (offsets,
metrics) and only a quarter in decode + transform. Shipping only the CPU stage to worker
processes (arroyo's `RunTaskWithMultiprocessing`) would leave consume, delivery and bookkeeping
on one core, add a serialisation round trip per batch, and need a second ordering layer to
return results in order. N members of the same consumer group scale all of it, and Kafka
keeps per-partition (hence per-user, events being keyed by user) order by giving each
partition to exactly one member; the commit rule is untouched because each worker commits only
what it consumed. The price is N Kafka connections and N times the per-process memory.

What the supervisor (this module, the pod's main process) does:

- starts N children, each `clevertap-consumer run` with `WORKERS=1` and its share of the
  settings that are per pod: `CLEVERTAP_MAX_IN_FLIGHT` is split so the shares add up to the
  account's cap (15 at CleverTap; a worker gets `cap // N`, the first `cap % N` one more — a
  static split needs no cross-process lock on the delivery path, and the group spreads
  partitions evenly, so shares rarely sit idle); `KAFKA_GROUP_INSTANCE_ID` gets a `-<i>` suffix
  (static members must differ); only worker 0 runs the user-deletion flow (it has its own
  group and CleverTap's 3-per-account deletion cap); each child serves its probes on a loopback
  port of its own, which it writes to a file here;
- serves the one `/metrics` (prometheus_client's multiprocess mode: each child writes its
  series to memory-mapped files in `PROMETHEUS_MULTIPROC_DIR`, this process merges them:
  counters and histograms add up, gauges as their `multiprocess_mode` in consumer/metrics.py
  says), with the process metrics of the whole tree, and `/healthz` and `/readyz`, which ask
  every child's own probe: ready only when every worker is;
- forwards SIGTERM/SIGINT (each child drains and commits as a single process does) and SIGHUP
  (each child reloads the destinations file; each also watches the file itself);
- when a child exits on its own, stops the others (draining them) and exits with the child's
  status (1 if it was 0): the pod restarts with the kubelet's back-off and the restart shows in
  `kubectl get pods`, where a supervisor restarting children in place would hide a crash loop
  behind a pod that looks healthy. A child's exit is a fatal Kafka error or a setting (2).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from .destinations import ConfigError
from .health import Status, serve_app
from .logs import WORKER_ENV
from .settings import Settings

log = logging.getLogger(__name__)

#: Set in each child's environment: where the child writes the port of its own probes.
PORT_FILE_ENV = "CLEVERTAP_CONSUMER_WORKER_PORT_FILE"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: How long after its drain a child may take before it is killed (a Kubernetes
#: chart's terminationGracePeriodSeconds ≥ DRAIN_TIMEOUT_SECONDS + 10 s leaves the supervisor time to)
#: kill them and exit itself).
EXIT_GRACE_S = 10.0
PROBE_TIMEOUT_S = 2.0


def in_flight_share(cap: int, workers: int, index: int) -> int:
    """Worker `index`'s part of the per-account request cap; the parts add up to `cap`."""
    return cap // workers + (1 if index < cap % workers else 0)


def child_environment(
    settings: Settings,
    index: int,
    *,
    metrics_dir: Path,
    port_file: Path,
    overrides: Mapping[str, Any],
    environ: Mapping[str, str],
) -> dict[str, str]:
    """The environment of worker `index`: the pod's, with the per-pod settings split."""
    env = dict(environ)
    env.update({name.upper(): str(value) for name, value in overrides.items() if value is not None})
    env.update(
        {
            "WORKERS": "1",
            "CLEVERTAP_MAX_IN_FLIGHT": str(
                in_flight_share(settings.clevertap_max_in_flight, settings.workers, index)
            ),
            "METRICS_HOST": "127.0.0.1",
            "METRICS_PORT": "0",
            MULTIPROC_ENV: str(metrics_dir),
            WORKER_ENV: str(index),
            PORT_FILE_ENV: str(port_file),
        }
    )
    if settings.kafka_group_instance_id:
        env["KAFKA_GROUP_INSTANCE_ID"] = f"{settings.kafka_group_instance_id}-{index}"
    if index > 0:
        env["KAFKA_REGULATION_TOPIC"] = ""  # one deletion consumer per pod
    return env


def write_port_file(port: int, environ: Mapping[str, str] = os.environ) -> None:
    """In a child: tell the supervisor where its probes are (atomically: never half a number)."""
    path = environ.get(PORT_FILE_ENV)
    if not path:
        return
    tmp = Path(f"{path}.tmp")
    tmp.write_text(str(port))
    tmp.replace(path)


@dataclass
class Child:
    index: int
    process: subprocess.Popen[bytes]
    port_file: Path
    port: int | None = None
    status: int | None = None

    def probe_port(self) -> int | None:
        if self.port is None:
            try:
                self.port = int(self.port_file.read_text())
            except (OSError, ValueError):
                return None
        return self.port


def _ask(port: int, path: str) -> Status:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=PROBE_TIMEOUT_S) as r:
            return Status(True, json.loads(r.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        return Status(False, body)
    except (OSError, ValueError) as exc:
        return Status(False, {"status": "unreachable", "reason": str(exc)})


@dataclass
class Workers:
    """The children and the aggregated probes (read by the HTTP thread)."""

    children: list[Child] = field(default_factory=list)
    stopping: bool = False

    def _each(self, path: str, starting_ok: bool) -> Status:
        answers: dict[str, Any] = {}
        ok = True
        for child in list(self.children):
            port = child.probe_port()
            if child.process.poll() is not None:
                answer = Status(False, {"status": "exited", "exit_status": child.process.returncode})
            elif port is None:
                answer = Status(starting_ok, {"status": "starting"})
            else:
                answer = _ask(port, path)
            ok = ok and answer.ok
            answers[str(child.index)] = answer.body
        return Status(ok, {"status": "ok" if ok else "not_ok", "workers": answers})

    def liveness(self) -> Status:
        """Live while every child is (a child still starting is live, as a single process is)."""
        return self._each("/healthz", starting_ok=True)

    def readiness(self) -> Status:
        """Ready only when every child is ready; never while stopping."""
        if self.stopping:
            return Status(False, {"status": "not_ready", "reason": "shutting down"})
        status = self._each("/readyz", starting_ok=False)
        body = {**status.body, "status": "ready" if status.ok else "not_ready"}
        return Status(status.ok, body)


class TreeProcessCollector(Collector):
    """`process_*` of the whole pod: the supervisor plus its children (the dashboard's CPU and
    memory panels read these; each child's own registry is not what /metrics serves)."""

    def __init__(self, children: Callable[[], Iterable[int]]) -> None:
        self._children = children
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")
        with open("/proc/stat") as f:
            boot = next(line for line in f if line.startswith("btime"))
        self._boot = float(boot.split()[1])

    def _stat(self, pid: int | str) -> list[str] | None:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                return f.read().decode().rsplit(")", 1)[1].split()
        except OSError:
            return None

    def collect(self) -> Iterable[Metric]:
        own = self._stat("self")
        if own is None:  # no /proc (not Linux): nothing to say
            return
        # utime, stime of the supervisor, plus cutime, cstime: children already reaped.
        cpu = sum(int(own[i]) for i in (11, 12, 13, 14)) / self._ticks
        rss = int(own[21]) * self._page
        vsize = int(own[20])
        for pid in self._children():
            stat = self._stat(pid)
            if stat is not None:
                cpu += (int(stat[11]) + int(stat[12])) / self._ticks
                rss += int(stat[21]) * self._page
                vsize += int(stat[20])
        yield CounterMetricFamily(
            "process_cpu_seconds", "Total user and system CPU time spent in seconds.", value=cpu
        )
        yield GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.", value=rss)
        yield GaugeMetricFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.", value=vsize)
        yield GaugeMetricFamily(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            value=self._boot + int(own[19]) / self._ticks,
        )


def _metrics_dir(environ: Mapping[str, str]) -> tuple[Path, bool]:
    """(folder for the children's metric files, whether it is ours to delete at exit).

    A folder given in PROMETHEUS_MULTIPROC_DIR is emptied of metric files first: files left by
    a previous run would add its counters to ours.
    """
    given = environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        try:
            path.mkdir(parents=True, exist_ok=True)
            for stale in path.glob("*.db"):
                stale.unlink()
        except OSError as exc:
            raise ConfigError(f"{MULTIPROC_ENV}: cannot use {given!r}: {exc.strerror or exc}") from None
        return path, False
    return Path(tempfile.mkdtemp(prefix="clevertap-consumer-metrics-")), True


def supervise(
    settings: Settings, overrides: Mapping[str, Any], environ: Mapping[str, str] = os.environ
) -> int:
    """Run `settings.workers` children until SIGTERM or one of them exits; the exit status."""
    from . import metrics  # build_info only: this process writes no metric of its own

    metrics_dir, owned = _metrics_dir(environ)
    ports_dir = Path(tempfile.mkdtemp(prefix="clevertap-consumer-workers-"))
    workers = Workers()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]
    registry.register(TreeProcessCollector(lambda: [c.process.pid for c in workers.children]))
    registry.register(metrics.build_info)
    try:
        try:
            server = serve_app(
                workers.liveness, workers.readiness, settings.metrics_host, settings.metrics_port, registry
            )
        except OSError as exc:
            log.error(
                "start-up failed: METRICS_PORT: cannot serve on %s:%s (METRICS_HOST:METRICS_PORT): %s",
                settings.metrics_host,
                settings.metrics_port,
                exc.strerror or exc,
                extra={"exit_status": 2},
            )
            return 2
        try:
            return Supervisor(settings, workers, metrics_dir).run(
                lambda index: child_environment(
                    settings,
                    index,
                    metrics_dir=metrics_dir,
                    port_file=ports_dir / f"worker-{index}.port",
                    overrides=overrides,
                    environ=environ,
                ),
                ports_dir,
                server.port,
            )
        finally:
            server.close()
    finally:
        shutil.rmtree(ports_dir, ignore_errors=True)
        if owned:
            shutil.rmtree(metrics_dir, ignore_errors=True)


class Supervisor:
    """The loop of the pod's main process: start the children, relay signals, reap them."""

    def __init__(self, settings: Settings, workers: Workers, metrics_dir: Path) -> None:
        self._settings = settings
        self._workers = workers
        self._metrics_dir = metrics_dir
        self._wake = threading.Event()
        self._signals: list[int] = []
        self._deadline: float | None = None
        self.status = 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals.append(signum)  # acted on by the loop, not inside the handler
        self._wake.set()

    def _stop_all(self) -> None:
        self._workers.stopping = True
        self._deadline = time.monotonic() + self._settings.drain_timeout_seconds + EXIT_GRACE_S
        _send(self._workers.children, signal.SIGTERM)

    def run(self, environment: Callable[[int], dict[str, str]], ports_dir: Path, port: int) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        children = self._workers.children
        for index in range(self._settings.workers):
            process = subprocess.Popen(
                [sys.executable, "-m", "consumer", "run"], env=environment(index), stdin=subprocess.DEVNULL
            )
            children.append(Child(index, process, ports_dir / f"worker-{index}.port"))
        cap = self._settings.clevertap_max_in_flight
        log.info(
            "started workers",
            extra={
                "workers": len(children),
                "pids": [c.process.pid for c in children],
                "port": port,
                "max_in_flight_per_worker": [in_flight_share(cap, len(children), c.index) for c in children],
            },
        )
        while True:
            self._wake.wait(0.2)
            self._wake.clear()
            self._relay_signals()
            if not self._reap():
                return self.status
            if self._deadline is not None and time.monotonic() > self._deadline:
                late = [c for c in children if c.status is None]
                log.error(
                    "workers did not stop in time; killing them", extra={"workers": [c.index for c in late]}
                )
                _send(late, signal.SIGKILL)
                self._deadline = None
                self.status = self.status or 1

    def _relay_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGHUP:
                log.info("SIGHUP: every worker reloads the destinations file")
                _send(self._workers.children, signal.SIGHUP)
            elif not self._workers.stopping:
                log.info(
                    "signal received, draining every worker", extra={"signal": signal.Signals(signum).name}
                )
                self._stop_all()

    def _reap(self) -> int:
        """Note the children that exited; the number still running."""
        running = 0
        for child in self._workers.children:
            if child.status is not None:
                continue
            code = child.process.poll()
            if code is None:
                running += 1
                continue
            child.status = code
            mark_process_dead(child.process.pid, str(self._metrics_dir))  # type: ignore[no-untyped-call]
            if self._workers.stopping:
                log.info("worker stopped", extra={"worker": child.index, "exit_status": code})
                # A child stopped by our SIGTERM before it set its handler had consumed nothing.
                if code not in (0, -signal.SIGTERM) and self.status == 0:  # the first failure
                    self.status = code if code > 0 else 1
                continue
            self.status = code if code > 0 else 1
            log.error(
                "worker exited on its own; stopping the others",
                extra={"worker": child.index, "exit_status": code},
            )
            self._stop_all()
        return running


def _send(children: Iterable[Child], signum: int) -> None:
    for child in children:
        if child.status is None and child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signum)

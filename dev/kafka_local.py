"""A real Apache Kafka broker on this machine, without Docker.

Fetches the broker's jars from Maven Central with Maven (dev/kafka/pom.xml), caches them under
.cache/kafka/, and runs one combined broker+controller node in KRaft mode on 127.0.0.1. Tests use
`Broker` directly (a private broker per test session, stopped and restarted at will); people use
the command line:

    python dev/kafka_local.py up      # start or reuse the local broker; prints host:port last
    python dev/kafka_local.py down    # stop it
    python dev/kafka_local.py status

When KAFKA_BOOTSTRAP_SERVERS is set, `up` uses that broker instead (e.g. docker compose users).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
POM = ROOT / "dev" / "kafka" / "pom.xml"
LOG4J = ROOT / "dev" / "kafka" / "log4j2.properties"
CACHE = ROOT / ".cache" / "kafka"
LOCAL = CACHE / "local"


class KafkaLocalError(RuntimeError):
    """The broker could not be fetched or started; the message says what to fix."""


def kafka_version() -> str:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if not match:
        raise KafkaLocalError(f"{POM}: no <kafka.version> property")
    return match.group(1)


def ensure_jars() -> Path:
    """Return the folder of broker jars, downloading them with Maven on first use."""
    version = kafka_version()
    libs = CACHE / version / "libs"
    marker = CACHE / version / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaLocalError(
            "Maven (mvn) is needed to fetch Kafka's jars; install it or set KAFKA_BOOTSTRAP_SERVERS"
        )
    with FileLock(CACHE / ".download.lock"):
        if marker.exists():
            return libs
        staging = CACHE / version / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise KafkaLocalError(
                f"Maven could not fetch Kafka {version}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker.write_text(version)
    return libs


def free_port(preferred: int | None = None) -> int:
    """A TCP port on 127.0.0.1 nobody listens on (the preferred one when it is free)."""
    for candidate in (preferred, 0):
        if candidate is None:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise KafkaLocalError("no free port")  # pragma: no cover - bind to 0 does not fail


def _die_with_parent() -> None:
    """Child-side: get SIGTERM when the parent dies, so a crashed test run leaves no broker."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait_until_ready(bootstrap: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until the broker answers metadata requests (or fail with its log's tail)."""
    import logging

    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout

    def check_alive() -> None:
        if proc is not None and proc.poll() is not None:
            raise KafkaLocalError(f"broker exited with status {proc.returncode}")

    # Wait for the port first: a client pointed at a closed port logs an error per retry.
    while not _reachable(bootstrap):
        check_alive()
        if time.monotonic() > deadline:
            raise KafkaLocalError(f"broker at {bootstrap} did not open its port within {timeout:.0f}s")
        time.sleep(0.2)
    quiet = logging.getLogger("kafka_local.client")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    admin = AdminClient({"bootstrap.servers": bootstrap}, logger=quiet)
    while time.monotonic() < deadline:
        check_alive()
        try:
            if admin.list_topics(timeout=1).brokers:
                return
        except Exception:  # the broker is still starting: any client error means "not yet"
            time.sleep(0.2)
    raise KafkaLocalError(f"broker at {bootstrap} did not answer within {timeout:.0f}s")


@dataclass
class Broker:
    """One KRaft node (broker + controller) with its data in `workdir`.

    Ports are chosen once, so `stop()` followed by `start()` brings the same broker back with its
    data: that is how tests simulate a broker restart.
    """

    workdir: Path
    port: int = 0
    controller_port: int = 0
    heap: str = "768m"
    detach: bool = False
    properties: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "broker.log"

    def _config(self) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "1000",
            "auto.create.topics.enable": "true",
            **self.properties,
        }
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _java(self, libs: Path, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise KafkaLocalError("Java 17+ is needed to run the local Kafka broker")
        return [
            java,
            "-Xms256m",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J}",
            "-cp",
            f"{libs}/*",
            *args,
        ]

    def start(self, timeout: float = 120.0, attempts: int = 3) -> Broker:
        """Start the broker and wait until it answers.

        A port found free can be taken by another process before the JVM binds it (parallel test
        sessions on one machine). A first start on ports we picked ourselves therefore retries on
        fresh ports with fresh storage; a restart keeps its ports, since its data depends on them.
        """
        picked = not self.port and not self.controller_port
        for attempt in range(1, attempts + 1):
            try:
                return self._start(timeout)
            except KafkaLocalError:
                if not picked or attempt == attempts:
                    raise
                shutil.rmtree(self.workdir / "data", ignore_errors=True)
                self.port = self.controller_port = 0
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> Broker:
        libs = ensure_jars()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()
        config = self._config()
        if not (self.workdir / "data" / "meta.properties").exists():
            fmt = self._java(
                libs,
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                _cluster_id(),
                "-c",
                str(config),
            )
            proc = subprocess.run(fmt, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise KafkaLocalError(
                    f"formatting KRaft storage failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}"
                )
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                self._java(libs, "kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=self.detach,
                preexec_fn=None if self.detach else _die_with_parent,  # noqa: PLW1509 - only sets prctl
            )
        try:
            wait_until_ready(self.bootstrap, timeout, self.process)
        except KafkaLocalError as exc:
            self.kill()
            tail = self.log_file.read_text(errors="replace")[-3000:]
            raise KafkaLocalError(f"{exc}\n--- {self.log_file} ---\n{tail}") from None
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the broker down cleanly (SIGTERM), or kill it if it does not stop in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _cluster_id() -> str:
    """A random KRaft cluster id: 16 random bytes, URL-safe base64 without padding."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


# --- command line -------------------------------------------------------------------------------

STATE = LOCAL / "state.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _reachable(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except (OSError, ValueError):
        return False


def running() -> str | None:
    """The bootstrap address of the broker `up` started, if it is still running."""
    if not STATE.exists():
        return None
    state = json.loads(STATE.read_text())
    return str(state["bootstrap"]) if _alive(state["pid"]) and _reachable(state["bootstrap"]) else None


def up() -> str:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        wait_until_ready(external, 30)
        return external
    already = running()
    if already:
        return already
    # KRaft storage remembers the controller's address: reuse the ports of the last run when they
    # are free, else start over with empty storage (the local broker holds nothing precious).
    ports = LOCAL / "ports.json"
    saved = json.loads(ports.read_text()) if ports.exists() else {}
    port, controller = saved.get("port", 0), saved.get("controller_port", 0)
    if not port or free_port(port) != port or free_port(controller) != controller:
        shutil.rmtree(LOCAL / "data", ignore_errors=True)
        port, controller = free_port(9092), free_port()
    broker = Broker(LOCAL, port=port, controller_port=controller, detach=True)
    broker.start()
    assert broker.process is not None
    ports.write_text(json.dumps({"port": broker.port, "controller_port": broker.controller_port}))
    STATE.write_text(json.dumps({"pid": broker.process.pid, "bootstrap": broker.bootstrap}))
    return broker.bootstrap


def down() -> bool:
    if not STATE.exists():
        return False
    state = json.loads(STATE.read_text())
    pid = int(state["pid"])
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    STATE.unlink()
    return True


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "up"
    try:
        if command == "up":
            print(up(), flush=True)
        elif command == "down":
            print("stopped" if down() else "not running")
        elif command == "status":
            bootstrap = running()
            print(bootstrap or "not running")
            return 0 if bootstrap else 1
        else:
            print(f"usage: {argv[0]} up|down|status", file=sys.stderr)
            return 2
    except KafkaLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

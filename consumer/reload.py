"""Destinations reload without a restart: on SIGHUP, and when the file (or a passcode file it
names) changes.

Kubernetes updates a mounted ConfigMap or Secret by writing a new timestamped folder and
swapping the `..data` symlink, so the path stays the same while what it resolves to changes;
inotify on the path would miss it. A watcher thread therefore reads the file and the passcode
files it names every second and compares a content hash (the files are small; a touch without a
change reloads nothing).

A changed file is validated exactly as at start-up (every passcode read, and refused when too
short to redact from logs) before anything
changes; then the router's table is swapped in one assignment. New destinations route at once;
a removed destination's events become `unknown_destination` dead letters, while batches already
built for it are delivered with the credentials they were built with; changed credentials and
options apply to records routed after the swap. An invalid file changes nothing: the error is
logged, `config_reloads_total{outcome="invalid"}` counts it and
`config_last_reload_successful` drops to 0 until a valid file arrives.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from . import logs, metrics
from .destinations import ConfigError, DestinationsFile, load_destinations, require_subscribed
from .observability import destination_secrets
from .route import Route, Router
from .settings import Settings

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0


def fingerprint(path: Path, destinations: DestinationsFile | None) -> str:
    """A hash of the file's content and of the passcode files the current configuration names
    (a Secret rotated in place changes credentials without touching the destinations file)."""
    digest = hashlib.sha256()
    files = [path] + [d.passcode_file for d in (destinations.destinations if destinations else ())]
    for f in files:
        if f is None:
            continue
        try:
            digest.update(f.read_bytes())
        except OSError as exc:
            digest.update(f"\0unreadable {exc.errno}".encode())
        digest.update(b"\0")
    return digest.hexdigest()


def diff(old: Mapping[str, Route], new: Mapping[str, Route]) -> dict[str, list[str]]:
    """Destination ids added, removed and changed (credentials, region or options)."""
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "changed": sorted(i for i in set(old) & set(new) if old[i] != new[i]),
    }


class DestinationsReloader:
    """Watches the destinations file from a thread of its own and swaps the router's table."""

    def __init__(
        self,
        router: Router,
        current: DestinationsFile,
        settings: Settings,
        *,
        interval: float = POLL_INTERVAL_S,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self._router, self._current, self._settings = router, current, settings
        self._path = settings.destinations_file
        self._interval, self._environ = interval, environ
        self._seen = fingerprint(self._path, current)
        self._listeners: list[Callable[[DestinationsFile], None]] = []
        self._wake = threading.Event()
        self._requested = False
        self._closing = False
        self._thread = threading.Thread(target=self._watch, name="destinations-reload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def on_reload(self, listener: Callable[[DestinationsFile], None]) -> None:
        """Also tell `listener` each applied file (stages outside the router, e.g. deletion)."""
        self._listeners.append(listener)

    def request(self) -> None:
        """Reload now, changed or not (SIGHUP). Safe from a signal handler: sets a flag."""
        self._requested = True
        self._wake.set()

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._thread.join(5)

    def _watch(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._closing:
                return
            requested, self._requested = self._requested, False
            seen = fingerprint(self._path, self._current)
            if requested or seen != self._seen:
                self._seen = seen  # an invalid file is tried again only when it changes again
                try:
                    self.reload("signal" if requested else "file changed")
                except Exception:  # the watcher must outlive any surprise; the service runs on
                    log.exception("destinations reload raised; keeping the previous configuration")
                    metrics.config_reloads.labels("invalid").inc()
                    metrics.config_last_reload_successful.set(0)

    def reload(self, trigger: str) -> bool:
        """Load, validate and apply the file; False (and nothing changed) when it is invalid."""
        try:
            loaded = load_destinations(self._path)
            require_subscribed(loaded, self._path, self._settings.kafka_topics)
            base_url = self._settings.clevertap_base_url
            fresh = Router.from_destinations(loaded, str(base_url) if base_url else None, self._environ)
            secrets = destination_secrets(loaded, self._environ)  # too short to redact: refused
        except ConfigError as exc:
            metrics.config_reloads.labels("invalid").inc()
            metrics.config_last_reload_successful.set(0)
            log.error(
                "destinations file invalid; keeping the previous configuration: %s",
                exc,
                extra={"trigger": trigger, "reason": "invalid"},
            )
            return False
        logs.register_secret(*secrets)  # before any log
        old = self._router.routes
        old_accounts = {r.target.account_id for r in old.values()}
        metrics.initialise(
            accounts=sorted({r.target.account_id for r in fresh.routes.values()} - old_accounts),
            destinations=sorted(fresh.routes),
            concurrency=self._settings.clevertap_max_in_flight,
        )
        self._router.replace(fresh.routes, fresh.sources)
        for listener in self._listeners:
            listener(loaded)
        self._current = loaded
        self._seen = fingerprint(self._path, loaded)
        metrics.config_reloads.labels("applied").inc()
        metrics.config_last_reload_successful.set(1)
        log.info("destinations reloaded", extra={"trigger": trigger, **diff(old, fresh.routes)})
        return True

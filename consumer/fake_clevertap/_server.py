"""The fake CleverTap HTTP server: `/1/upload` as CleverTap answers it, plus a `/_fake/` control API.

Built on the standard library's `ThreadingHTTPServer` (HTTP/1.1 keep-alive, a thread per
connection) so the package gains no server dependency for a test tool; orjson does the JSON.
Per request the work is one body parse and the record checks (whole-list passes for plain
events); bench/fake_clevertap.py measures what that sustains.

Faults are drawn from one seeded RNG, a fixed number of draws per request, so a test that sends
requests in a fixed order sees the same faults on every run.
"""

from __future__ import annotations

import random
import select
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from ..clevertap_api import MAX_RECORDS, MAX_TOKEN_RECORDS
from . import _attribution as attribution
from ._attribution import ATTRIBUTION_PATH
from ._validate import E_MISC, check_records

# Longer than any sane client timeout: a "timeout" fault holds the request until the client
# gives up (we notice the closed socket), the fake is reset, or this runs out.
HANG_SECONDS = 600.0
_POLL_SECONDS = 0.05
_PASSCODE_HEADER = "x-clevertap-passcode"
# CleverTap's Delete Profile API (clevertap-api.md §6): ≤ 100 values per request, one key,
# 3 concurrent requests per account, counted apart from the 15 of /1/upload.
DELETE_PATH = "/1/delete/profiles.json"
MAX_DELETE_VALUES = 100
MAX_DELETE_CONCURRENT = 3
_5XX_STATUSES = (500, 502, 503, 504)


@dataclass(frozen=True, slots=True)
class Faults:
    """What the fake does wrong on purpose. Rates are probabilities per request, except
    `partial_rate`, the probability per otherwise-valid record of being answered 555."""

    status_5xx_rate: float = 0.0
    status_429_rate: float = 0.0
    timeout_rate: float = 0.0
    reset_rate: float = 0.0
    partial_rate: float = 0.0
    latency_ms: float = 0.0
    down: bool = False
    # Answer every request 401 (`true`) or 403 (`"forbidden"`), as CleverTap does for a wrong
    # passcode or region: lets a test revoke and restore credentials without a new config.
    refuse: bool | str = False
    # Answer every request with this status (400, 401, 5xx, ...) and an error text that quotes
    # the passcode header back, as a careless API might: lets a test prove the service never
    # repeats a credential it was sent back (logs, metrics, DLQ headers). 0: off.
    echo_passcode: int = 0

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Faults:
        """Faults from the control API's JSON; ValueError names what is wrong."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise ValueError(f"unknown fault key(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name == "down":
                if not isinstance(value, bool):
                    raise ValueError("down must be true or false")
            elif name == "refuse":
                if value not in (True, False, "forbidden"):
                    raise ValueError('refuse must be true, false or "forbidden"')
            elif name == "echo_passcode":
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int)
                    or not (value == 0 or 400 <= value < 600)
                ):
                    raise ValueError("echo_passcode must be 0 or an HTTP error status (400-599)")
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            elif name == "latency_ms" and value < 0:
                raise ValueError("latency_ms must be ≥ 0")
            elif name != "latency_ms" and not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
            values[name] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class _Draw:
    reset: bool
    timeout: bool
    throttle: bool
    error_status: int | None
    partial_seed: float


@dataclass(slots=True)
class _Accepted:
    """One answered upload: the raw body (compact; parsed again only when a test asks), the
    0-based indices of the records that were not accepted, and when it was accepted (epoch
    seconds: a fault campaign compares it with the moment it killed the consumer)."""

    account: str
    headers: dict[str, str]
    body: bytes
    skipped: frozenset[int]
    at: float = 0.0


@dataclass
class FakeState:
    """Everything the fake remembers, shared by the handler threads under one lock."""

    accounts: dict[str, str]
    any_account: bool
    max_concurrent: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    faults: Faults = field(default_factory=Faults)
    account_faults: dict[str, Faults] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    codes: Counter[int] = field(default_factory=Counter)
    processed: Counter[str] = field(default_factory=Counter)
    unprocessed: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)
    max_seen: dict[str, int] = field(default_factory=dict)
    accepted: list[_Accepted] = field(default_factory=list)
    deletions: list[dict[str, Any]] = field(default_factory=list)
    # `/attribution` (_attribution.py): account → token when checked; whitelisted partners
    # (empty: any); what arrived, without the secrets.
    attribution_tokens: dict[str, str] = field(default_factory=dict)
    attribution_partners: frozenset[str] = frozenset()
    attributions: list[dict[str, Any]] = field(default_factory=list)

    def authorized(self, account: str, passcode: str | None) -> bool:
        if not account or not passcode:
            return False
        if account in self.accounts:
            return self.accounts[account] == passcode
        return self.any_account

    def faults_for(self, account: str) -> Faults:
        with self.lock:
            return self.account_faults.get(account, self.faults)

    def set_faults(self, raw: dict[str, Any]) -> dict[str, Any]:
        raw = dict(raw)
        account = raw.pop("account", None)
        seed = raw.pop("seed", None)
        if account is not None and not isinstance(account, str):
            raise ValueError("account must be a string")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        faults = Faults.parse(raw)
        with self.lock:
            if seed is not None:
                self.rng.seed(seed)
            if account is None:
                self.faults = faults
            else:
                self.account_faults[account] = faults
        return {"account": account, "faults": asdict(faults)}

    def draw(self, faults: Faults) -> _Draw:
        """The same six draws for every request, whatever the faults, so sequences replay."""
        with self.lock:
            r = self.rng
            u_reset, u_timeout, u_throttle, u_error, seed = (r.random() for _ in range(5))
            status = r.choice(_5XX_STATUSES)
        return _Draw(
            reset=u_reset < faults.reset_rate,
            timeout=u_timeout < faults.timeout_rate,
            throttle=u_throttle < faults.status_429_rate,
            error_status=status if u_error < faults.status_5xx_rate else None,
            partial_seed=seed,
        )

    def enter(self, account: str, cap: int | None = None) -> bool:
        """Count one more request in flight for `account`; False (and not counted) over the cap.
        The peak includes the refused request: that is what shows a client exceeded the cap."""
        with self.lock:
            self.in_flight[account] += 1
            now = self.in_flight[account]
            self.max_seen[account] = max(self.max_seen.get(account, 0), now)
            if now > (self.max_concurrent if cap is None else cap):
                self.in_flight[account] -= 1
                return False
            return True

    def leave(self, account: str) -> None:
        with self.lock:
            self.in_flight[account] -= 1

    def count(self, status: str) -> None:
        with self.lock:
            self.statuses[status] += 1

    def accept(self, entry: _Accepted, total: int, codes: list[int]) -> None:
        with self.lock:
            entry.at = time.time()  # under the lock: times ascend in arrival order
            self.accepted.append(entry)
            self.processed[entry.account] += total - len(entry.skipped)
            self.unprocessed[entry.account] += len(entry.skipped)
            self.codes.update(codes)

    def reset(self) -> None:
        """Forget records, stats and faults; release requests hanging in a timeout fault."""
        with self.lock:
            self.wake.set()
            self.wake = threading.Event()
            self.faults = Faults()
            self.account_faults.clear()
            self.rng.seed(0)
            self.statuses.clear()
            self.codes.clear()
            self.processed.clear()
            self.unprocessed.clear()
            self.max_seen.clear()
            self.accepted.clear()
            self.deletions.clear()
            self.attributions.clear()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            accounts = set(self.processed) | set(self.unprocessed) | set(self.max_seen)
            return {
                "requests": dict(self.statuses),
                "records": {
                    "processed": sum(self.processed.values()),
                    "unprocessed": sum(self.unprocessed.values()),
                },
                "codes": {str(c): n for c, n in self.codes.items()},
                "accounts": {
                    a: {
                        "processed": self.processed[a],
                        "unprocessed": self.unprocessed[a],
                        "max_concurrency": self.max_seen.get(a, 0),
                        "in_flight": self.in_flight[a],
                    }
                    for a in sorted(accounts)
                },
                "max_concurrency": dict(self.max_seen),
                "deletions": len(self.deletions),
            }

    def deleted(self, account: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [d for d in self.deletions if account is None or d["account"] == account]

    def records(self, account: str | None) -> dict[str, Any]:
        with self.lock:
            accepted = list(enumerate(self.accepted))
        requests: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        for n, entry in accepted:
            if account is not None and entry.account != account:
                continue
            requests.append({"id": n, "account": entry.account, "headers": entry.headers, "at": entry.at})
            for i, record in enumerate(orjson.loads(entry.body)["d"]):
                if i not in entry.skipped:
                    records.append({"account": entry.account, "request": n, "record": record})
        return {"records": records, "requests": requests}


def _fail_body(status: int, error: str) -> bytes:
    return orjson.dumps({"status": "fail", "error": error, "code": status})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections to CleverTap
    server_version = "FakeCleverTap/1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a few hundred requests a second would drown the test output."""

    # -- plumbing ---------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, payload: bytes) -> None:
        """Answer an upload, counted in the stats."""
        self.server.state.count(str(status))
        self._reply(status, payload)

    def _reply(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _fail(self, status: int, error: str) -> None:
        self._send(status, _fail_body(status, error))

    def _reset_connection(self) -> None:
        """Close with SO_LINGER 0: the client gets a TCP RST and no response at all."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the file holds a reference that would delay the real close
        self.connection.close()

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _hang(self, wake: threading.Event) -> None:
        """Hold the request (and its concurrency slot) like a stuck server, until the client
        closes the connection, the fake is reset or stopped, or HANG_SECONDS pass."""
        deadline = time.monotonic() + HANG_SECONDS
        while not wake.wait(_POLL_SECONDS) and time.monotonic() < deadline:
            if self._client_gone():
                break
        self._reset_connection()

    # -- routes -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        state = self.server.state
        if url.path == "/_fake/records":
            account = parse_qs(url.query).get("account", [None])[0]
            self._reply(200, orjson.dumps(state.records(account)))
        elif url.path == "/_fake/stats":
            self._reply(200, orjson.dumps(state.stats()))
        elif url.path == ATTRIBUTION_PATH:
            self._attribution(parse_qs(url.query, keep_blank_values=True))
        elif url.path == "/_fake/attributions":
            account = parse_qs(url.query).get("account", [None])[0]
            with state.lock:
                found = [a for a in state.attributions if account is None or a["account_id"] == account]
            self._reply(200, orjson.dumps({"attributions": found}))
        elif url.path == "/_fake/deletions":
            account = parse_qs(url.query).get("account", [None])[0]
            self._reply(200, orjson.dumps({"deletions": state.deleted(account)}))
        else:
            self._reply(404, _fail_body(404, "Not Found"))

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        if url.path == "/1/upload":
            self._upload(body, dry_run=parse_qs(url.query).get("dryRun") == ["1"])
        elif url.path == ATTRIBUTION_PATH:  # CleverTap does not say which method: both work
            self._attribution(parse_qs(url.query, keep_blank_values=True))
        elif url.path == DELETE_PATH:
            self._delete(body)
        elif url.path == "/_fake/faults":
            try:
                raw = orjson.loads(body or b"{}")
                if not isinstance(raw, dict):
                    raise ValueError("send a JSON object")
                self._reply(200, orjson.dumps(self.server.state.set_faults(raw)))
            except (ValueError, orjson.JSONDecodeError) as exc:
                self._reply(400, _fail_body(400, str(exc)))
        elif url.path == "/_fake/reset":
            self.server.state.reset()
            self._reply(200, b'{"status":"ok"}')
        else:
            self._reply(404, _fail_body(404, "Not Found"))

    def _attribution(self, query: dict[str, list[str]]) -> None:
        state = self.server.state
        account = query.get("account_id", [""])[0]
        faults = state.faults_for(account)
        if faults.down:
            self._fail(503, "Service Unavailable")
            return
        error = state.draw(faults).error_status
        if error is not None:
            self._fail(error, "Internal Server Error")
            return
        status, body, recorded = attribution.check(
            query,
            authorized=state.authorized,
            tokens=state.attribution_tokens,
            partners=state.attribution_partners,
        )
        if recorded is not None:
            with state.lock:
                state.attributions.append(recorded)
        self._send(status, body)

    def _serve_api(
        self,
        body: bytes,
        process: Callable[[str, bytes, Faults], tuple[int, bytes] | None],
        slot_suffix: str = "",
        cap: int | None = None,
    ) -> None:
        """What every CleverTap API does first: faults, credentials, the per-account cap."""
        state = self.server.state
        account = self.headers.get("X-CleverTap-Account-Id", "")
        faults = state.faults_for(account)
        if faults.down:
            self._fail(503, "Service Unavailable")
            return
        if faults.echo_passcode:
            passcode = self.headers.get("X-CleverTap-Passcode", "")
            self._fail(faults.echo_passcode, f"Invalid passcode {passcode} for account {account}")
            return
        if faults.refuse:
            self._fail(403, "Forbidden") if faults.refuse == "forbidden" else self._fail(
                401, "Invalid Credentials"
            )
            return
        if not state.authorized(account, self.headers.get("X-CleverTap-Passcode")):
            self._fail(401, "Invalid Credentials")
            return
        slot = account + slot_suffix
        if not state.enter(slot, cap):
            self._fail(429, "Too many concurrent requests")
            return
        try:
            reply = process(account, body, faults)
        finally:
            # Leave before answering: a client that got its answer may send the next request at
            # once, and must not find this one still counted against the cap.
            state.leave(slot)
        if reply is not None:
            self._send(*reply)

    def _upload(self, body: bytes, *, dry_run: bool = False) -> None:
        self._serve_api(body, lambda account, b, faults: self._process(account, b, faults, dry_run))

    def _delete(self, body: bytes) -> None:
        """`POST /1/delete/profiles.json`: the same faults, credentials and reply shapes as an
        upload, CleverTap's own cap of 3 concurrent deletions per account, and its body rules."""
        self._serve_api(body, self._process_delete, " (delete)", MAX_DELETE_CONCURRENT)

    def _process_delete(self, account: str, body: bytes, faults: Faults) -> tuple[int, bytes]:
        state = self.server.state
        draw = state.draw(faults)
        if faults.latency_ms:
            state.wake.wait(faults.latency_ms / 1000)
        if draw.throttle:
            return 429, _fail_body(429, "Too many concurrent requests")
        if draw.error_status is not None:
            return draw.error_status, _fail_body(draw.error_status, "Internal Server Error")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        problem = delete_problem(doc)
        if problem is not None:
            return 400, _fail_body(400, problem)
        key = "identity" if "identity" in doc else "guid"
        values = doc[key] if isinstance(doc[key], list) else [doc[key]]
        with state.lock:
            state.deletions.append({"account": account, key: values})
        return 200, b'{"status":"success"}'

    def _process(
        self, account: str, body: bytes, faults: Faults, dry_run: bool = False
    ) -> tuple[int, bytes] | None:
        state = self.server.state
        wake = state.wake
        draw = state.draw(faults)
        if faults.latency_ms:
            wake.wait(faults.latency_ms / 1000)
        if draw.reset:
            state.count("reset")
            self._reset_connection()
            return None
        if draw.timeout:
            state.count("timeout")
            self._hang(wake)
            return None
        if draw.throttle:
            return 429, _fail_body(429, "Too many concurrent requests")
        if draw.error_status is not None:
            return draw.error_status, _fail_body(draw.error_status, "Internal Server Error")

        malformed = 400, _fail_body(400, "Malformed request")
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return malformed
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return malformed
        records = doc.get("d") if isinstance(doc, dict) else None
        if not isinstance(records, list) or len(records) > MAX_RECORDS:
            return malformed
        # The substring test skips the count for the usual body with no token record at all.
        if b'"token"' in body:
            tokens = sum(1 for r in records if isinstance(r, dict) and r.get("type") == "token")
            if tokens > MAX_TOKEN_RECORDS:
                return malformed

        partial = random.Random(draw.partial_seed) if faults.partial_rate else None
        errors = check_records(records)
        if partial is not None:
            for i in range(len(records)):
                if i not in errors and partial.random() < faults.partial_rate:
                    errors[i] = E_MISC
        unprocessed = [
            {
                "status": "fail",
                "code": code,
                "error": f"{text} Skipped record number : {i + 1}",
                "record": records[i],
            }
            for i, (code, text) in sorted(errors.items())
        ]
        skipped = set(errors)
        codes = [code for code, _ in errors.values()]
        processed = len(records) - len(skipped)
        headers = {k: v for k, v in self.headers.items() if k.lower() != _PASSCODE_HEADER}
        if dry_run:  # `?dryRun=1`: checked and answered as usual, nothing stored or counted
            state.count("dry_run")
        else:
            state.accept(_Accepted(account, headers, body, frozenset(skipped)), len(records), codes)
        status = "success" if not skipped else ("partial" if processed else "fail")
        return 200, orjson.dumps({"status": status, "processed": processed, "unprocessed": unprocessed})


def delete_problem(doc: Any) -> str | None:
    """CleverTap's checks on a Delete Profile body: exactly one of `identity` / `guid`, a string
    or a list of 1-100 strings. The text of the 400 when the body is refused, else None."""
    if not isinstance(doc, dict):
        return "Malformed request"
    keys = [k for k in ("identity", "guid") if k in doc]
    if len(keys) != 1:
        return "Pass either identity or guid, not both" if keys else "identity or guid is required"
    values = doc[keys[0]]
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        return f"{keys[0]} must be a string or a list of strings"
    if len(values) > MAX_DELETE_VALUES:
        return f"at most {MAX_DELETE_VALUES} values per request"
    return None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: FakeState) -> None:
        self.state = state
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished mid-reply is business as usual for a fault injector."""


class FakeCleverTap:
    """The fake server. `serve_forever()` blocks; `start()` runs it on a background thread.

    Accounts are `{account_id: passcode}`; with `any_account` any non-empty pair is accepted
    as well (the listed accounts still need their own passcode).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        accounts: dict[str, str] | None = None,
        *,
        any_account: bool = False,
        max_concurrent: int = 15,
        attribution_tokens: dict[str, str] | None = None,
        attribution_partners: tuple[str, ...] = (),
    ) -> None:
        self.state = FakeState(dict(accounts or {}), any_account, max_concurrent)
        self.state.attribution_tokens = dict(attribution_tokens or {})
        self.state.attribution_partners = frozenset(attribution_partners)
        self._httpd = _HTTPServer((host, port), self.state)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:8080; uploads go to `url + "/1/upload"`."""
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def start(self) -> FakeCleverTap:
        self._thread = threading.Thread(target=self.serve_forever, name="fake-clevertap", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release requests stuck in a timeout fault."""
        self.state.wake.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> FakeCleverTap:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

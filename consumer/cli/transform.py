"""`transform`: the transform stage on JSON lines, for debugging, conformance and demos.

Contract (shared with ../shared/conformance/check.py): one JSON object per input line, either
`{"message": <event>, "destination": <RudderStack-style Config>}` or, with
`--destination-config FILE`, the bare event. Output, one line per input line:
`{"requests": [...]}`, `{"error": {...}}` or `{"filtered": {...}}`; with `--batch`, batch lines
first, then error lines, then filtered lines, each naming its input lines in `inputs`.

Bad input never stops the command: a line that is not JSON, not an object, or carries a bad
destination config gets an error line (status 400) and the next line is read. The passcode is
written only where the contract puts it, the request header.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import click

from ..clevertap_api import MAX_RECORDS

if TYPE_CHECKING:
    from ..batch import Batch
    from ..transform import AttributionOptions, Filtered, Profile, Result, TransformConfig

_RS_KEYS: Final = (
    "accountId",
    "passcode",
    "region",
    "trackAnonymous",
    "enableObjectIdMapping",
    "eventFilteringOption",
    "whitelistedEvents",
    "blacklistedEvents",
)
# The service's own attribution options, read by the default profile (README, "Attribution").
_ATTRIBUTION_KEYS: Final = (
    "installEventNames",
    "attributionUserKey",
    "inAppEvents",
    "restrictedMediaSources",
    "attributionProfile",
    "attributionPartner",
)


class InputError(Exception):
    """A problem with one input line, worded for the person who wrote it (never a secret)."""


@dataclass(frozen=True, slots=True)
class Sink:
    """Where a destination's records go: the request line and the transform settings.

    The passcode is output here (the request header is the contract), so it stays out of the
    repr: a Sink in a traceback must not print it.
    """

    config: TransformConfig
    url: str
    headers: dict[str, Any] = field(repr=False)
    account_id: str
    passcode: str = field(repr=False)

    @property
    def group(self) -> tuple[str, str, str]:
        """Requests can share a batch only with the same URL and credentials."""
        return (self.url, self.account_id, self.passcode)


def _event_names(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    names = (v.get("eventName") if isinstance(v, dict) else v for v in value)
    return frozenset(n for n in names if isinstance(n, str))


def _rudderstack_sink(cfg: dict[str, Any]) -> Sink:
    """RudderStack's reading of a Config: nothing validated, JavaScript truthiness for flags."""
    from ..transform import EventFilter, Profile, TransformConfig, host_for_region
    from ..transform._js import to_string, truthy

    region = cfg.get("region")
    host = host_for_region(to_string(region) if truthy(region) else None, Profile.RUDDERSTACK)
    headers: dict[str, Any] = {}
    # An absent value is `undefined` in RudderStack and disappears from the serialised headers.
    if "accountId" in cfg:
        headers["X-CleverTap-Account-Id"] = cfg["accountId"]
    if "passcode" in cfg:
        headers["X-CleverTap-Passcode"] = cfg["passcode"]
    headers["Content-Type"] = "application/json"
    option = cfg.get("eventFilteringOption")
    event_filter = EventFilter(option) if option in {f.value for f in EventFilter} else EventFilter.DISABLE
    names = {
        EventFilter.ALLOW: _event_names(cfg.get("whitelistedEvents")),
        EventFilter.DENY: _event_names(cfg.get("blacklistedEvents")),
        EventFilter.DISABLE: frozenset[str](),
    }[event_filter]
    account = to_string(cfg.get("accountId")) if "accountId" in cfg else ""
    passcode = to_string(cfg.get("passcode")) if "passcode" in cfg else ""
    config = TransformConfig(
        account_id=account,
        region=to_string(region) if truthy(region) else None,
        track_anonymous=truthy(cfg.get("trackAnonymous")),
        enable_object_id_mapping=truthy(cfg.get("enableObjectIdMapping")),
        profile=Profile.RUDDERSTACK,
        event_filter=event_filter,
        event_names=names,
        attribution=_attribution(cfg),
    )
    return Sink(config, f"https://{host}/1/upload", headers, account, passcode)


def _attribution(cfg: dict[str, Any]) -> AttributionOptions:
    """The attribution options, validated as the destinations file does: the service applies
    them to partner topics whatever the destination's profile, so the rudderstack sink must too."""
    from pydantic import ValidationError

    from ..destinations import Destination
    from ..transform import AttributionOptions

    known = {k: cfg[k] for k in _ATTRIBUTION_KEYS if k in cfg}
    if not known:
        return AttributionOptions()
    try:  # only the attribution keys matter here; the rest are placeholders
        dest = Destination.model_validate({"id": "cli", "accountId": "cli", "passcode": "unused", **known})
    except ValidationError as exc:
        raise InputError(f"destination config: {_describe(exc)}") from None
    return dest.transform_config().attribution


def _describe(err: Any) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {e['msg']}" if where else e["msg"])
    return "; ".join(p.removeprefix("Value error, ") for p in parts)


def _default_sink(cfg: dict[str, Any], allow_passcode_sources: bool = False) -> Sink:
    """The service's reading of a Config: validated like a destinations-file entry."""
    from pydantic import ValidationError

    from ..destinations import ConfigError, Destination
    from ..transform import Profile

    keys = _RS_KEYS + _ATTRIBUTION_KEYS + (("passcodeFile", "passcodeEnv") if allow_passcode_sources else ())
    known = {k: cfg[k] for k in keys if k in cfg}
    try:
        dest = Destination.model_validate({"id": "cli", **known, "profile": Profile.DEFAULT})
        passcode = dest.resolve_passcode().get_secret_value()
    except ValidationError as exc:
        raise InputError(f"destination config: {_describe(exc)}") from None
    except ConfigError as exc:
        raise InputError(f"destination config: {exc}") from None
    headers = {
        "X-CleverTap-Account-Id": dest.account_id,
        "X-CleverTap-Passcode": passcode,
        "Content-Type": "application/json",
    }
    return Sink(dest.transform_config(), f"https://{dest.host}/1/upload", headers, dest.account_id, passcode)


def _sink(cfg: Any, profile: Profile, allow_passcode_sources: bool = False) -> Sink:
    from ..transform import Profile

    if isinstance(cfg, dict) and isinstance(cfg.get("Config"), dict):
        cfg = cfg["Config"]  # a whole RudderStack destination object
    if not isinstance(cfg, dict):
        raise InputError("destination config must be a JSON object")
    if profile is Profile.RUDDERSTACK:
        return _rudderstack_sink(cfg)
    return _default_sink(cfg, allow_passcode_sources)


def _file_sink(path: Path, profile: Profile | None) -> tuple[Sink, Profile]:
    """A RudderStack-style Config object, or our destinations file with one destination."""
    from ..destinations import ConfigError, load_destinations, read_destinations_data
    from ..transform import Profile

    try:
        data = read_destinations_data(path)  # errors never quote the file (inline passcodes)
    except ConfigError as exc:
        raise InputError(f"cannot read destination config: {exc}") from None
    if isinstance(data, dict) and "destinations" in data:
        try:
            loaded = load_destinations(path)
        except ConfigError as exc:
            raise InputError(str(exc)) from None
        if len(loaded.destinations) != 1:
            raise InputError(f"{path}: a destinations file for `transform` must hold exactly one destination")
        dest = loaded.destinations[0]
        chosen = profile or dest.profile
        cfg: dict[str, Any] = dest.model_dump(by_alias=True, exclude_none=True, mode="json")
        try:
            cfg["passcode"] = dest.resolve_passcode().get_secret_value()
        except ConfigError as exc:
            raise InputError(str(exc)) from None
        cfg.pop("passcodeFile", None)
        cfg.pop("passcodeEnv", None)
        return _sink(cfg, chosen), chosen
    chosen = profile or Profile.DEFAULT
    return _sink(data, chosen, allow_passcode_sources=True), chosen


@dataclass(slots=True)
class _Outcome:
    index: int
    sink: Sink | None = None
    result: Result | None = None
    error: dict[str, Any] | None = None
    fixes: list[dict[str, str]] = field(default_factory=list)


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    for raw in stream:
        if raw.strip():
            yield raw


def _outcomes(
    lines: Iterable[bytes], profile: Profile, fixed_sink: Sink | None, fmt: str = "rudderstack"
) -> Iterator[_Outcome]:
    import orjson

    from ..route import FORMATS

    transform = FORMATS[fmt]

    sinks: dict[bytes, Sink | InputError] = {}
    for index, raw in enumerate(lines):
        outcome = _Outcome(index)
        try:
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"line {index + 1}: not valid JSON ({exc})") from None
            if fixed_sink is not None:
                message, sink = line, fixed_sink
            else:
                if not isinstance(line, dict) or "message" not in line or "destination" not in line:
                    raise InputError(
                        f'line {index + 1}: expected {{"message": …, "destination": …}} '
                        "(or give --destination-config FILE and pass bare messages)"
                    )
                message = line["message"]
                key = orjson.dumps(line["destination"], option=orjson.OPT_SORT_KEYS)
                cached = sinks.get(key)
                if cached is None:
                    try:
                        cached = _sink(line["destination"], profile)
                    except InputError as exc:
                        cached = exc
                    except ValueError as exc:  # an unknown region, from host_for_region
                        cached = InputError(f"destination config: {exc}")
                    sinks[key] = cached
                if isinstance(cached, InputError):
                    raise cached
                sink = cached
            outcome.sink = sink
            outcome.result = transform(message, sink.config)
        except InputError as exc:
            outcome.error = {"status": 400, "message": str(exc), "reason": "bad_input"}
        yield outcome


def _error_body(outcome: _Outcome) -> dict[str, Any]:
    from ..transform import Rejected

    if outcome.error is not None:
        return outcome.error
    assert isinstance(outcome.result, Rejected)
    r = outcome.result
    return {"status": r.status, "message": r.message, "reason": r.reason}


def _filtered_body(result: Filtered) -> dict[str, str]:
    """`{"event"}` as RudderStack's contract has it, plus the reason when it is not the
    destination's event filter (attribution rules)."""
    if result.reason == "event_filter":
        return {"event": result.event_name}
    return {"event": result.event_name, "reason": result.reason}


def _request(sink: Sink, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """One record's request line. An `attributionPartner` install is a GET to `/attribution`
    with its query parameters; the service adds the account token and passcode, which are not
    printed (the token is not part of a RudderStack config)."""
    if kind == "attribution":
        url = sink.url.removesuffix("/1/upload") + "/attribution"
        return {"method": "GET", "url": url, "params": {**data, "account_id": sink.account_id}}
    return {"method": "POST", "url": sink.url, "headers": sink.headers, "body": {"d": [data]}}


def _run_single(outcomes: Iterable[_Outcome], out: IO[bytes]) -> None:
    import orjson

    from ..transform import Accepted, Filtered

    for o in outcomes:
        line: dict[str, Any]
        if isinstance(o.result, Accepted):
            assert o.sink is not None
            line = {"requests": [_request(o.sink, r.kind, r.data) for r in o.result.records]}
            if o.result.fixes:
                line["fixes"] = [
                    {"kind": f.kind, "field": f.field, "action": f.action} for f in o.result.fixes
                ]
        elif isinstance(o.result, Filtered):
            line = {"filtered": _filtered_body(o.result)}
        else:
            line = {"error": _error_body(o)}
        out.write(orjson.dumps(line) + b"\n")


def _batch_line(sink: Sink, body: bytes, inputs: list[int]) -> bytes:
    import orjson

    request = b'{"method":"POST","url":%b,"headers":%b,"body":%b}' % (
        orjson.dumps(sink.url),
        orjson.dumps(sink.headers),
        body,
    )
    return b'{"batch":%b,"inputs":%b}\n' % (request, orjson.dumps(inputs))


def _run_batched_rudderstack(outcomes: Iterable[_Outcome], out: IO[bytes]) -> list[_Outcome]:
    """RudderStack's router: per destination, in input order, ≤ 1000 records per request, and an
    event's records never split across requests. Returns the outcomes that are not batches."""
    import orjson

    from ..transform import Accepted

    groups: dict[tuple[str, str, str], list[tuple[Sink, list[bytes], list[int]]]] = {}
    rest: list[_Outcome] = []
    for o in outcomes:
        if not isinstance(o.result, Accepted):
            rest.append(o)
            continue
        assert o.sink is not None
        batches = groups.setdefault(o.sink.group, [])
        records = [orjson.dumps(r.data) for r in o.result.records]
        if not batches or len(batches[-1][1]) + len(records) > MAX_RECORDS:
            batches.append((o.sink, [], []))
        batches[-1][1].extend(records)
        batches[-1][2].append(o.index)
    for batches in groups.values():
        for sink, records, inputs in batches:
            out.write(_batch_line(sink, b'{"d":[' + b",".join(records) + b"]}", inputs))
    return rest


def _run_batched_service(outcomes: Iterable[_Outcome], out: IO[bytes]) -> list[_Outcome]:
    """The service's batcher: per target and record kind, ≤ 1000 records (tokens ≤ 100) and the
    byte cap. Returns the outcomes that are not batches."""
    from pydantic import SecretStr

    from ..batch import Batcher
    from ..contracts import Target
    from ..offsets import Entry
    from ..settings import Settings
    from ..transform import Accepted

    batcher = Batcher(
        max_records=Settings.model_fields["batch_max_records"].default,
        max_bytes=Settings.model_fields["batch_max_bytes"].default,
        linger_s=float("inf"),
    )
    sinks: dict[Target, Sink] = {}
    rest: list[_Outcome] = []

    def emit(batches: list[Batch]) -> None:
        for batch in batches:
            inputs = sorted({entry.offset for entry in batch.entries})
            out.write(_batch_line(sinks[batch.target], batch.body(), inputs))

    for o in outcomes:
        if not isinstance(o.result, Accepted):
            rest.append(o)
            continue
        assert o.sink is not None
        target = Target(o.sink.account_id, o.sink.url, SecretStr(o.sink.passcode))
        sinks.setdefault(target, o.sink)
        entry = Entry("stdin", 0, o.index, None, None, [], None)
        for record in o.result.records:
            emit(batcher.add(target, record, entry, 0.0))
    emit(batcher.flush())
    return rest


@click.command("transform")
@click.option(
    "--destination-config",
    "destination_config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A RudderStack-style Config object (JSON/YAML), or a destinations file with one destination. "
    "Input lines are then bare messages.",
)
@click.option(
    "--profile",
    type=click.Choice(["rudderstack", "default"]),
    default=None,
    help="rudderstack: RudderStack's exact output, quirks included. default: the service's fixed "
    "mapping (the default, unless the destinations file says otherwise).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rudderstack", "appsflyer", "branch", "adjust"]),
    default="rudderstack",
    show_default=True,
    help="What the input messages are: RudderStack/Segment messages, or a partner's payloads "
    "(AppsFlyer Push API, Branch webhooks, Adjust callbacks), as a `sources:` format.",
)
@click.option(
    "--batch", is_flag=True, help="Pack accepted records into upload requests, as a batch stage does."
)
def transform_command(destination_config: Path | None, profile: str | None, fmt: str, batch: bool) -> None:
    """Turn JSON-lines events on stdin into CleverTap upload requests on stdout.

    \b
    Input:  {"message": {...}, "destination": {"accountId", "passcode", "region", ...}} per line,
            or bare messages with --destination-config FILE.
    Output: {"requests": [...]} | {"error": {"status", "message", "reason"}} | {"filtered": {"event"}};
            with --batch: {"batch": {...}, "inputs": [...]} lines, then errors, then filtered,
            each with "inputs". Default profile lines also list "fixes" made to fit CleverTap's limits.
    Exit status 0 unless stdin cannot be read.
    """
    import orjson

    from ..transform import Filtered, Profile

    chosen = Profile(profile) if profile is not None else None
    out = sys.stdout.buffer
    fixed_sink: Sink | None = None
    if destination_config is not None:
        try:
            fixed_sink, chosen = _file_sink(destination_config, chosen)
        except (InputError, ValueError) as exc:
            # Every line would fail the same way: say so once per line, as the contract asks.
            message = f"destination config: {exc}" if isinstance(exc, ValueError) else str(exc)
            failure = (
                orjson.dumps({"error": {"status": 400, "message": message, "reason": "bad_input"}}) + b"\n"
            )
            try:
                for _ in _lines(sys.stdin.buffer):
                    out.write(failure)
            except OSError as read_error:
                click.echo(f"error: cannot read stdin: {read_error}", err=True)
                sys.exit(1)
            out.flush()
            return
    effective = chosen or Profile.DEFAULT
    try:
        outcomes = _outcomes(_lines(sys.stdin.buffer), effective, fixed_sink, fmt)
        if not batch:
            _run_single(outcomes, out)
        else:
            runner = _run_batched_rudderstack if effective is Profile.RUDDERSTACK else _run_batched_service
            rest = runner(outcomes, out)
            for o in rest:
                if not isinstance(o.result, Filtered):
                    out.write(orjson.dumps({"error": _error_body(o), "inputs": [o.index]}) + b"\n")
            for o in rest:
                if isinstance(o.result, Filtered):
                    line = {"filtered": _filtered_body(o.result), "inputs": [o.index]}
                    out.write(orjson.dumps(line) + b"\n")
        out.flush()
    except BrokenPipeError:  # the reader went away (`| head`): nothing left to say to it
        sys.stderr.close()
    except OSError as exc:
        click.echo(f"error: cannot read stdin: {exc}", err=True)
        sys.exit(1)

"""A small Confluent-compatible Schema Registry, served over real HTTP on 127.0.0.1.

Why our own: no real implementation can be had from the package registries this project uses.
Karapace (Aiven) is not on PyPI, Confluent's registry is not on Maven Central, and Apicurio's
Maven Central artifacts are Quarkus modules that need the project's own build to run (its
runnable form ships as container images and release archives). So this implements the subset of
the Confluent REST API that confluent-kafka's `SchemaRegistryClient` uses for Avro:

    POST /subjects/{subject}/versions      register (idempotent), answers {"id": N}
    GET  /schemas/ids/{id}                 {"schema": "..."} or 404 with error_code 40403
    GET  /subjects, /subjects/{s}/versions, /subjects/{s}/versions/{v|latest}

Ids are global and shared by equal schemas, as in Confluent's registry. Optional basic auth
answers 401 (error_code 40101) without the right credentials; `fail_with(503)` makes every
request fail until `fail_with(None)`; `requests` counts what the clients asked for.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaRegistryServer:
    """The registry's state and its HTTP server thread."""

    def __init__(self, user_info: str | None = None) -> None:
        self.user_info = user_info
        self.schemas: dict[int, dict[str, Any]] = {}
        self.subjects: dict[str, list[int]] = {}
        self.requests: Counter[str] = Counter()
        self._failure: int | None = None
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SchemaRegistryServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="schema-registry", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def fail_with(self, status: int | None) -> None:
        self._failure = status

    def register(self, subject: str, schema: str, schema_type: str = "AVRO") -> int:
        """Register directly (what a producer in another process would have done)."""
        with self._lock:
            key = _identity(schema, schema_type)
            schema_id = next((i for i, known in self.schemas.items() if known["key"] == key), None)
            if schema_id is None:
                schema_id = len(self.schemas) + 1
                self.schemas[schema_id] = {"key": key, "schema": schema, "schemaType": schema_type}
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id

    # Request handling -----------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: bytes, auth: str | None) -> tuple[int, Any]:
        self.requests[f"{method} {_route(path)}"] += 1
        if self._failure is not None:
            return self._failure, {"error_code": self._failure * 100, "message": "injected failure"}
        if self.user_info is not None:
            expected = "Basic " + base64.b64encode(self.user_info.encode()).decode()
            if auth != expected:
                return 401, {"error_code": 40101, "message": "Unauthorized"}
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if method == "POST" and len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
            request = json.loads(body)
            kind = request.get("schemaType") or "AVRO"
            try:
                json.loads(request["schema"])
            except (KeyError, ValueError):
                return 422, {"error_code": 42201, "message": "Invalid schema"}
            return 200, {"id": self.register(parts[1], request["schema"], kind)}
        if method == "GET" and len(parts) == 3 and parts[:2] == ["schemas", "ids"] and parts[2].isdigit():
            known = self.schemas.get(int(parts[2]))
            if known is None:
                return 404, {"error_code": 40403, "message": f"Schema {parts[2]} not found"}
            answer = {"schema": known["schema"]}
            if known["schemaType"] != "AVRO":
                answer["schemaType"] = known["schemaType"]
            return 200, answer
        if method == "GET" and parts == ["subjects"]:
            return 200, sorted(self.subjects)
        if method == "GET" and len(parts) >= 3 and parts[0] == "subjects" and parts[2] == "versions":
            versions = self.subjects.get(parts[1])
            if versions is None:
                return 404, {"error_code": 40401, "message": f"Subject '{parts[1]}' not found."}
            if len(parts) == 3:
                return 200, list(range(1, len(versions) + 1))
            wanted = len(versions) if parts[3] == "latest" else int(parts[3]) if parts[3].isdigit() else 0
            if not 1 <= wanted <= len(versions):
                return 404, {"error_code": 40402, "message": "Version not found."}
            schema_id = versions[wanted - 1]
            return 200, {
                "subject": parts[1],
                "version": wanted,
                "id": schema_id,
                "schema": self.schemas[schema_id]["schema"],
            }
        return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}


def _identity(schema: str, schema_type: str) -> str:
    """Equal schemas (same JSON, any whitespace) share an id, as Confluent's registry does."""
    return schema_type + json.dumps(json.loads(schema), sort_keys=True, separators=(",", ":"))


def _route(path: str) -> str:
    """A request path with ids and names generalised, for request counting."""
    parts = urlsplit(path).path.strip("/").split("/")
    if len(parts) == 3 and parts[:2] == ["schemas", "ids"]:
        return "/schemas/ids/{id}"
    if parts and parts[0] == "subjects" and len(parts) > 1:
        return "/subjects/{subject}/" + "/".join(parts[2:])
    return "/" + "/".join(parts)


def _handler(registry: SchemaRegistryServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, answer = registry.handle(
                method, urlsplit(self.path).path, body, self.headers.get("Authorization")
            )
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    return Handler


@contextmanager
def running_registry(user_info: str | None = None) -> Iterator[SchemaRegistryServer]:
    server = SchemaRegistryServer(user_info).start()
    try:
        yield server
    finally:
        server.stop()

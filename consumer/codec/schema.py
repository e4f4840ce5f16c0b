"""The event envelope schema (schemas/event.avsc) as the code sees it.

The file is package data (`consumer/schemas/event.avsc`; the repository's top-level `schemas/`
is a symlink to that folder), so an installed wheel finds it without the source tree. What the
envelope functions need to know about the fields is derived from the file here, once, so a field
added to the schema cannot be forgotten by the code that fills it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Final

from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form

SCHEMA_RESOURCE: Final = "schemas/event.avsc"

#: Fields whose value is the JSON text of a free-form value (any JSON, objects usually).
JSON_FIELDS: Final = frozenset({"properties", "traits", "context", "integrations"})
#: The field that carries every top-level key the others cannot hold, as a JSON object text.
EXTRA_FIELD: Final = "extra"

_SCALARS: Final = frozenset({"string", "long", "double", "boolean"})


def schema_text() -> str:
    """The schema file's exact text: what the encoder registers, so the registry keeps its docs."""
    return resources.files("consumer").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")


def _classify(schema: dict[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """Split the fields into plain text fields and scalar-union fields; refuse anything else.

    The envelope rules (empty string = absent, misfits go to `extra`) only hold for these two
    shapes, so a field of another shape is a mistake in the schema file, caught at import.
    """
    text: set[str] = set()
    scalar: set[str] = set()
    for field in schema["fields"]:
        name, kind = field["name"], field["type"]
        if kind == "string" and field.get("default") == "":
            text.add(name)
        elif (
            isinstance(kind, list)
            and kind
            and kind[0] == "string"
            and set(kind) <= _SCALARS
            and field.get("default") == ""
        ):
            scalar.add(name)
        else:
            raise RuntimeError(f"{SCHEMA_RESOURCE}: field {name!r} has a shape the envelope cannot fill")
    missing = (JSON_FIELDS | {EXTRA_FIELD}) - text
    if missing:
        raise RuntimeError(f"{SCHEMA_RESOURCE}: JSON text fields missing: {sorted(missing)}")
    return frozenset(text - JSON_FIELDS - {EXTRA_FIELD}), frozenset(scalar)


SCHEMA: Final[dict[str, Any]] = json.loads(schema_text())
#: The parsed schema fastavro reads and writes with (parsing is the expensive part; do it once).
PARSED: Final = parse_schema(SCHEMA)
#: Parsing Canonical Form: two schemas with equal forms read the same bytes the same way.
CANONICAL: Final = to_parsing_canonical_form(SCHEMA)
FULL_NAME: Final = f"{SCHEMA['namespace']}.{SCHEMA['name']}"
FIELD_NAMES: Final = tuple(f["name"] for f in SCHEMA["fields"])
TEXT_FIELDS, SCALAR_FIELDS = _classify(SCHEMA)

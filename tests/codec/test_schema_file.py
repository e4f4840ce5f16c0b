"""The schema file: where it lives, that the wheel carries it, and that it follows its own rules."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from fastavro import parse_schema

from consumer.codec.schema import JSON_FIELDS, SCHEMA, schema_text

ROOT = Path(__file__).resolve().parents[2]


def test_top_level_schemas_is_the_package_folder() -> None:
    assert (ROOT / "schemas").is_symlink()
    assert (ROOT / "schemas").resolve() == (ROOT / "consumer" / "schemas").resolve()
    assert schema_text() == (ROOT / "schemas" / "event.avsc").read_text(encoding="utf-8")


def test_the_built_wheel_carries_the_schema(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "consumer", source / "consumer", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("clevertap_consumer-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = archive.read("consumer/schemas/event.avsc")
    assert packaged == (ROOT / "schemas" / "event.avsc").read_bytes()


def test_every_field_has_a_doc_and_a_default() -> None:
    assert SCHEMA["namespace"]
    assert SCHEMA["doc"]
    for field in SCHEMA["fields"]:
        assert field.get("doc"), field["name"]
        assert "default" in field, field["name"]  # readers of older data need one for every field
    parse_schema(SCHEMA)  # defaults match their types


def test_rudderstack_fields_are_all_named() -> None:
    names = {f["name"] for f in SCHEMA["fields"]}
    rudderstack = {
        "messageId",
        "type",
        "event",
        "name",
        "userId",
        "anonymousId",
        "previousId",
        "groupId",
        "channel",
        "timestamp",
        "originalTimestamp",
        "sentAt",
        "receivedAt",
        "rudderId",
        "request_ip",
    }
    assert rudderstack | JSON_FIELDS | {"destinationId", "extra"} <= names

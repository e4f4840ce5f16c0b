"""`make bench`'s runner end to end in a tiny mode: the table and the JSON it writes have the rows
and the machine they promise, and a benchmark that cannot run becomes a row saying why.

Structure only: no number here is compared with a speed (bench/ measures speed, tests do not).
The end-to-end benchmarks need a broker and a minute, so this runs the two in-process ones.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent


def test_runner_writes_one_table_with_the_machine(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    cmd = [sys.executable, "bench/run.py", "--quick", "--events", "300", "--only", "transform,decode"]
    proc = subprocess.run(
        [*cmd, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = orjson.loads(out.read_bytes())
    assert doc["mode"] == "quick --events 300"
    machine = doc["machine"]
    for key in ("nproc", "cpu_model", "ram_gib", "load_average_before", "load_average_after", "date_utc"):
        assert machine[key] not in (None, "", "unknown"), key
    assert len(machine["git_sha"]) >= 12
    assert set(doc["results"]) == {"transform", "decode"}
    assert set(doc["results"]["transform"]["profiles"]) == {"default", "rudderstack"}
    assert doc["results"]["transform"]["events"] == 300
    assert doc["results"]["decode"]["decode_per_cpu_s_median"] > 0
    rows = {what: (number, beside) for what, number, beside in doc["table"]}
    assert rows["transform, default profile"][0].endswith("events/CPU-s")
    assert "bare fastavro" in rows["decode (Decoder.decode)"][1]
    # benchmarks left out are rows saying so, not gaps
    assert rows["end to end, 1 worker"] == ("not available", "not run (--only)")
    assert rows["end to end, 2 workers"] == ("not available", "not run (--only)")
    # the printed table is the JSON's table, and the machine is printed under it
    assert "| transform, default profile |" in proc.stdout
    assert f"git {machine['git_sha']}" in proc.stdout


def test_committed_readme_shows_the_committed_results() -> None:
    """bench/README.md's generated table and bench/results.json come from the same full run."""
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None
    assert spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = run  # dataclasses look their module up there
    spec.loader.exec_module(run)
    doc = orjson.loads((ROOT / "bench" / "results.json").read_bytes())
    assert doc["mode"] == "full"
    readme = (ROOT / "bench" / "README.md").read_text()
    block = readme.split(run.BEGIN, 1)[1].split(run.END, 1)[0].strip()
    assert block == run.markdown([tuple(r) for r in doc["table"]], doc["machine"], doc["mode"])

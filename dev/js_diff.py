"""Differential check of the transform's JavaScript semantics against Node.js.

The rudderstack profile re-implements `JSON.stringify`, `String()`, `Number()`, `trim`,
Handlebars escaping and V8's `Date.parse` in Python (consumer/transform/_js.py, _js_date.py).
This feeds the same random values to both and prints every disagreement. It needs `node` on
PATH (with TZ=UTC, where RudderStack's transformer runs) and is a development tool, not a test:
CI has no Node.

Usage: .venv/bin/python dev/js_diff.py [--seed N] [--count N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consumer.transform._js import html_escape, stringify, to_number, to_string, trim
from consumer.transform._js_date import parse_date_ms

NODE_VALUES = r"""
const c = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const esc = (s) => String(s).replace(/[&<>"'`=]/g, (ch) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;',
  '"': '&quot;', "'": '&#x27;', '`': '&#x60;', '=': '&#x3D;'}[ch]));
const num = (n) => Number.isNaN(n) ? 'NaN' : (n === Infinity ? 'Inf' : (n === -Infinity ? '-Inf' : n));
console.log(JSON.stringify(c.map((v) => [JSON.stringify(v), String(v), num(Number(v)),
  typeof v === 'string' ? v.trim() : null, typeof v === 'string' ? esc(v) : null])));
"""
NODE_DATES = r"""
const c = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(c.map((s) => { const t = new Date(s).getTime(); return Number.isNaN(t) ? null : t; })));
"""


def node(script: str, values: list[Any]) -> list[Any]:
    out = subprocess.run(
        ["node", "-e", script],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "UTC"},
    )
    result: list[Any] = json.loads(out.stdout)
    return result


def random_values(rnd: random.Random, count: int) -> list[Any]:
    alphabet = [
        *"aZ09 \t\n\"\\.eE+-xobInfity_&<>'`=",
        "\u00a0",
        "\ufeff",
        "\x00",
        "\x1f",
        "\x7f",
        "é",
        "😀",
        "\u2028",
    ]
    floats = [1e21, 1e20, 1e-6, 1e-7, 1.5e-7, 2.0**53, 2.0**60, 1e300, 5e-324, 0.1, -0.0, 1e16]

    def text() -> str:
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 8)))

    def scalar() -> Any:
        return rnd.choice(
            [
                None,
                True,
                False,
                rnd.randrange(-(10**17), 10**17),
                rnd.uniform(-1e3, 1e3),
                rnd.choice(floats),
                math.ldexp(rnd.random(), rnd.randrange(-80, 80)),
                text(),
                rnd.choice(["0x1F", "0b101", " 12 ", "1e3", "1_000", "Infinity", ".5", "5.", "", "NaN"]),
            ]
        )

    def value(depth: int = 0) -> Any:
        r = rnd.random()
        if depth > 3 or r < 0.5:
            return scalar()
        if r < 0.75:
            return [value(depth + 1) for _ in range(rnd.randrange(0, 4))]
        keys = [text(), rnd.choice(["0", "1", "10", "01", "4294967294", "4294967295", "-1", "b"])]
        return {rnd.choice(keys): value(depth + 1) for _ in range(rnd.randrange(0, 4))}

    return [value() for _ in range(count)]


def random_dates(rnd: random.Random, count: int) -> list[str]:
    words = [
        "2021",
        "03",
        "10",
        "T",
        "Z",
        "11",
        ":",
        "59",
        ".",
        "080",
        "+",
        "05",
        "-",
        " ",
        "GMT",
        "Mar",
        "pm",
        "UTC",
    ]
    words += ["(x)", "/", "1", "31", "12", "24", "00", "1999", "7", "am", "z", "t"]
    chars = "0123456789-:+. TZ/,()aAmMpPjJ"
    out = []
    for _ in range(count):
        if rnd.random() < 0.5:
            out.append("".join(rnd.choice(words) for _ in range(rnd.randrange(1, 9))))
        else:
            out.append("".join(rnd.choice(chars) for _ in range(rnd.randrange(1, 14))))
    return out


def number_tag(n: float) -> Any:
    if math.isnan(n):
        return "NaN"
    if math.isinf(n):
        return "Inf" if n > 0 else "-Inf"
    return n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=5000)
    args = parser.parse_args()
    if shutil.which("node") is None:
        sys.exit("node is not on PATH")
    rnd = random.Random(args.seed)
    problems = 0
    values = random_values(rnd, args.count)
    for v, (js_json, js_string, js_number, js_trim, js_escape) in zip(
        values, node(NODE_VALUES, values), strict=True
    ):
        n = number_tag(to_number(v))
        same_number = n == js_number or (isinstance(js_number, int) and n == float(js_number))
        ok = stringify(v) == js_json and to_string(v) == js_string and same_number
        if isinstance(v, str):
            ok = ok and trim(v) == js_trim and html_escape(v) == js_escape
        if not ok:
            problems += 1
            print(
                f"value {v!r}: python {[stringify(v), to_string(v), n]!r} node {[js_json, js_string, js_number]!r}"
            )
    dates = random_dates(rnd, args.count)
    for text, js_ms in zip(dates, node(NODE_DATES, dates), strict=True):
        if parse_date_ms(text) != js_ms:
            problems += 1
            print(f"date {text!r}: python {parse_date_ms(text)} node {js_ms}")
    print(f"{problems} disagreements in {len(values)} values and {len(dates)} date strings")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

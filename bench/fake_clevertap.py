"""How fast the fake CleverTap answers 1000-record uploads on loopback (prints numbers, asserts nothing).

The end-to-end benchmark pushes its events through the fake, so the fake must not be what limits
it. Starts the fake in its own process, sends REQUESTS uploads of 1000 event records from
CONNECTIONS threads (keep-alive httpx clients), and prints records/s, plus the fake's own CPU
time per request (from /proc), which says what one core sustains when the machine is busy
with other work.

    .venv/bin/python bench/fake_clevertap.py [REQUESTS] [CONNECTIONS]
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import orjson


def _records(n: int) -> bytes:
    now = int(time.time())
    records = [
        {
            "type": "event",
            "identity": f"user-{i % 5000}",
            "ts": now - i,
            "evtName": "Product Viewed",
            "evtData": {
                "product_id": f"sku-{i}",
                "name": "Monopoly: 3rd Edition",
                "price": 19.99,
                "quantity": 1,
                "category": "Games",
                "url": "https://www.example.com/product/path",
                "image_url": "https://www.example.com/product/path.jpg",
                "currency": "USD",
                "coupon": "SUMMER",
                "position": 3,
                "brand": "Hasbro",
                "variant": "200 pieces",
            },
        }
        for i in range(n)
    ]
    return orjson.dumps({"d": records})


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    cmd = [sys.executable, "-m", "consumer.fake_clevertap", "--port", "0", "--account", "BENCH:pass"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-1]
        body = _records(1000)
        headers = {
            "X-CleverTap-Account-Id": "BENCH",
            "X-CleverTap-Passcode": "pass",
            "Content-Type": "application/json; charset=utf-8",
        }
        per_thread = [
            requests // connections + (1 if i < requests % connections else 0) for i in range(connections)
        ]
        failures: list[str] = []

        def run(count: int) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
                for _ in range(count):
                    reply = client.post("/1/upload", content=body)
                    if reply.status_code != 200 or orjson.loads(reply.content)["status"] != "success":
                        failures.append(reply.text[:200])

        cpu_before = _cpu_seconds(proc.pid)
        started = time.perf_counter()
        threads = [threading.Thread(target=run, args=(n,)) for n in per_thread]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        cpu_per_request = (_cpu_seconds(proc.pid) - cpu_before) / requests
        print(
            f"fake CleverTap: {requests} requests x 1000 records ({len(body) / 1e3:.0f} kB each) over "
            f"{connections} connections in {elapsed:.2f} s: {requests / elapsed:.0f} requests/s, "
            f"{requests * 1000 / elapsed:,.0f} records/s; {len(failures)} failed"
        )
        print(
            f"fake CleverTap CPU: {cpu_per_request * 1e3:.1f} ms per request, "
            f"{1 / cpu_per_request:.0f} requests/s ({1000 / cpu_per_request:,.0f} records/s) per busy core"
        )
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()

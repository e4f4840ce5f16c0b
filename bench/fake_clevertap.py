"""How fast the fake CleverTap answers 1000-record uploads on loopback (prints numbers, asserts nothing).

The end-to-end benchmark pushes its events through the fake, so the fake must not be what limits
it. Starts the fake in its own process, sends REQUESTS uploads of 1000 event records from
CONNECTIONS threads (keep-alive httpx clients), and prints records/s.

    .venv/bin/python bench/fake_clevertap.py [REQUESTS] [CONNECTIONS]
"""

from __future__ import annotations

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

        started = time.perf_counter()
        threads = [threading.Thread(target=run, args=(n,)) for n in per_thread]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        print(
            f"fake CleverTap: {requests} requests x 1000 records ({len(body) / 1e3:.0f} kB each) over "
            f"{connections} connections in {elapsed:.2f} s: {requests / elapsed:.0f} requests/s, "
            f"{requests * 1000 / elapsed:,.0f} records/s; {len(failures)} failed"
        )
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()

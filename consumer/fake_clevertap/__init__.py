"""A CleverTap `/1/upload` stand-in for tests, the demo and docker-compose.

It checks requests as CleverTap does (credentials, body shape, per-record codes, the 15-request
concurrency cap per account), records what it accepted, and injects faults on request through
`/_fake/` endpoints. Start it with `clevertap-consumer fake-clevertap` or
`python -m consumer.fake_clevertap`; the README's command-line section lists the control API.
"""

from ._server import HANG_SECONDS, FakeCleverTap, Faults
from ._validate import check_record

__all__ = ["HANG_SECONDS", "FakeCleverTap", "Faults", "check_record"]
